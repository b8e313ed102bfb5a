#include "lib/tls.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

static char *ssl_error(const char *what)
{
	char tmp[200];
	unsigned long e = ERR_get_error();
	ERR_error_string_n(e, tmp, sizeof(tmp));
	ERR_clear_error();
	return xasprintf("%s: %s", what, e ? tmp : "unknown error");
}

SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*error_r = ssl_error("SSL_CTX_new() failed");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Small per-connection footprint: release buffers while idle. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		*error_r = ssl_error(cert_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = ssl_error(key_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static SSL_CTX *client_ctx_new(char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		*error_r = ssl_error("SSL_CTX_new() failed");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Only makes DANE available to this context's connections. */
	if (SSL_CTX_dane_enable(ctx) <= 0) {
		*error_r = ssl_error("SSL_CTX_dane_enable() failed");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *tls_client_ctx(bool verify, char **error_r)
{
	SSL_CTX *ctx = client_ctx_new(error_r);
	if (ctx == NULL)
		return NULL;
	if (verify) {
		SSL_CTX_set_default_verify_paths(ctx);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	return ctx;
}

SSL_CTX *tls_client_ctx_file(const char *ca_file, char **error_r)
{
	SSL_CTX *ctx = client_ctx_new(error_r);
	if (ctx == NULL)
		return NULL;
	if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		*error_r = ssl_error(ca_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

bool tls_tlsa_usable(const struct tls_tlsa *r)
{
	static const size_t digest_len[] = {0, 32, 64};
	if (r->usage != 2 && r->usage != 3)
		return false;
	if (r->selector > 1 || r->mtype > 2)
		return false;
	return r->mtype == 0 ? r->len > 0 : r->len == digest_len[r->mtype];
}

/* RFC 7672: DANE-EE(3) matches a key or certificate without looking at
   names (3.1.1); DANE-TA(2) checks the TLSA base domain as the reference
   identifier (3.2.2), which SSL_dane_enable sets. */
static int client_ssl_dane(SSL *ssl, const struct tls_client_check *check, char **error_r)
{
	if (SSL_dane_enable(ssl, check->host) <= 0) {
		*error_r = ssl_error("SSL_dane_enable() failed");
		return -1;
	}
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	int usable = 0;
	for (size_t i = 0; i < check->ntlsa; i++) {
		const struct tls_tlsa *r = &check->tlsa[i];
		if (tls_tlsa_usable(r) &&
		    SSL_dane_tlsa_add(ssl, r->usage, r->selector, r->mtype, r->data, r->len) > 0)
			usable++;
	}
	ERR_clear_error();
	if (usable == 0) {
		*error_r = xstrdup("no usable TLSA record");
		return -1;
	}
	return 0;
}

SSL *tls_client_ssl(SSL_CTX *ctx, const struct tls_client_check *check, char **error_r)
{
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL) {
		*error_r = ssl_error("SSL_new() failed");
		return NULL;
	}
	if (check->sni != NULL)
		SSL_set_tlsext_host_name(ssl, check->sni);
	if (check->ntlsa > 0) {
		if (client_ssl_dane(ssl, check, error_r) < 0) {
			SSL_free(ssl);
			return NULL;
		}
	} else if (check->host != NULL) {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (!SSL_set1_host(ssl, check->host)) {
			*error_r = ssl_error("SSL_set1_host() failed");
			SSL_free(ssl);
			return NULL;
		}
	}
	/* Without checks the context's mode stays (a verifying context still
	   checks the chain). */
	if (check->ntlsa > 0 || check->host != NULL)
		SSL_set_verify(ssl, check->require ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	return ssl;
}

const char *tls_verify_error(const SSL *ssl)
{
	if (SSL_get0_peer_certificate(ssl) == NULL)
		return "no certificate";
	long v = SSL_get_verify_result(ssl);
	return v == X509_V_OK ? NULL : X509_verify_cert_error_string(v);
}

bool tls_dane_matched(SSL *ssl)
{
	return SSL_get0_dane_authority(ssl, NULL, NULL) >= 0;
}

static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert, char **error_r)
{
	/* Written by root at the first start, maybe in DATA_DIR/tls: never
	   through an existing entry (see lib/fsutil.h). */
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	FILE *f = NULL;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd >= 0)
		f = fdopen(fd, "w");
	if (f == NULL) {
		*error_r = xasprintf("open(%s) failed: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(tmp);
		return -1;
	}
	int ok =
	    key != NULL ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
	if (!ok || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		*error_r = ssl_error(tmp);
		fclose(f);
		unlink(tmp);
		free(tmp);
		return -1;
	}
	fclose(f);
	int rc = rename(tmp, path);
	if (rc < 0) {
		*error_r = xasprintf("rename(%s, %s) failed: %s", tmp, path, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	return rc;
}

int tls_ensure_self_signed(const char *cert_file, const char *key_file, const char *hostname, char **error_r)
{
	/* Made only where there is none; one that cannot be seen is reported
	   by whoever loads it. */
	if (access(cert_file, F_OK) == 0 || errno != ENOENT)
		return 0;
	char *dir = xstrdup(cert_file);
	char *slash = strrchr(dir, '/');
	if (slash != NULL) {
		*slash = '\0';
		if (fs_mkdir_p(dir, 0755, error_r) < 0) {
			free(dir);
			return -1;
		}
	}
	free(dir);
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	int rc = -1;
	if (key == NULL || x == NULL) {
		*error_r = ssl_error("key generation failed");
		goto out;
	}
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400);
	X509_set_pubkey(x, key);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"postoffice", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname, -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	char *san = xasprintf("DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", hostname);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	free(san);
	if (ext != NULL) {
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(x, key, EVP_sha256()) == 0) {
		*error_r = ssl_error("X509_sign() failed");
		goto out;
	}
	if (write_pem(key_file, 0600, key, NULL, error_r) < 0 ||
	    write_pem(cert_file, 0644, NULL, x, error_r) < 0)
		goto out;
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}
