#ifndef LIB_TLS_H
#define LIB_TLS_H
/* TLS contexts (OpenSSL) and the self-signed certificate made on first start. */
#include <stdbool.h>
#include <openssl/ssl.h>

/* Server context from PEM files; TLS 1.2 and later. */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, char **error_r);
/* Client context; verify: check the peer against the system CA store. */
SSL_CTX *tls_client_ctx(bool verify, char **error_r);
/* Writes a self-signed certificate (EC P-256, 10 years) for hostname and its
   key when cert_file does not exist yet. */
int tls_ensure_self_signed(const char *cert_file, const char *key_file, const char *hostname, char **error_r);
#endif
