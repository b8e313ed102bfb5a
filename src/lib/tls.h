#ifndef LIB_TLS_H
#define LIB_TLS_H
/* TLS contexts (OpenSSL) and the self-signed certificate made on first start. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

/* A TLSA record (RFC 6698 2.1): a certificate association for DANE. */
struct tls_tlsa {
	uint8_t usage;    /* 2 DANE-TA, 3 DANE-EE (0 and 1 are unusable for SMTP: RFC 7672 3.1.3) */
	uint8_t selector; /* 0 the whole certificate, 1 its SubjectPublicKeyInfo */
	uint8_t mtype;    /* 0 exact, 1 SHA-256, 2 SHA-512 */
	unsigned char *data;
	size_t len;
};

/* Server context from PEM files; TLS 1.2 and later. */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, char **error_r);
/* Client context; verify: check the peer against the system CA store.
   DANE is enabled on it (tls_client_ssl). */
SSL_CTX *tls_client_ctx(bool verify, char **error_r);
/* Client context that checks peers against the CA certificates of the PEM
   file ca_file instead of the system store. */
SSL_CTX *tls_client_ctx_file(const char *ca_file, char **error_r);

/* What a client checks of the server's certificate. */
struct tls_client_check {
	const char *sni;  /* server name indication, or NULL */
	const char *host; /* the name the certificate must be valid for (RFC 6125), or NULL: no check */
	bool require;     /* a failed check aborts the handshake; otherwise it is only
			     recorded (tls_verify_error) */
	/* DANE (RFC 7672): the chain must match one of these records instead of
	   the CA store; host is then the TLSA base domain, checked for DANE-TA(2)
	   only (DANE-EE(3) ignores names, 3.1.1).  Unusable records are skipped. */
	const struct tls_tlsa *tlsa;
	size_t ntlsa;
};
/* A client SSL of ctx set up for check (ctx must check peers when host is
   set without TLSA records).  NULL with *error_r when none of the TLSA
   records is usable. */
SSL *tls_client_ssl(SSL_CTX *ctx, const struct tls_client_check *check, char **error_r);
/* RFC 7672 3.1.3, 3.1.1, 3.1.2: usage 2 or 3, selector 0 or 1, matching type
   0, 1 or 2 with data of the digest's length. */
bool tls_tlsa_usable(const struct tls_tlsa *r);
/* After the handshake: NULL when the certificate passed the checks asked
   for, else why not (static text). */
const char *tls_verify_error(const SSL *ssl);
/* After the handshake: true when a TLSA record matched the chain. */
bool tls_dane_matched(SSL *ssl);
/* Writes a self-signed certificate (EC P-256, 10 years) for hostname and its
   key when cert_file does not exist yet. */
int tls_ensure_self_signed(const char *cert_file, const char *key_file, const char *hostname, char **error_r);
#endif
