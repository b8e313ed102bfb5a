#include "lib/io.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <zlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

/* Flow control.  A client that sends commands and never reads the replies
   must not make us buffer without bound: while more than IO_OUTPUT_HIGH
   bytes of output wait in the io (in every layer), io_read_line() hands
   out no more lines and the socket is not read; both resume once the
   output falls to IO_OUTPUT_LOW.  Input is bounded the same way: the
   socket is not read while IO_INPUT_HIGH bytes wait to be consumed (a
   session busy with a job, a FETCH streaming), and a filter layer (TLS,
   deflate) passes at most IO_LOWER_HIGH bytes down before the socket has
   taken them, so that output waits at the top where it is counted. */
#define IO_OUTPUT_HIGH (256 * 1024)
#define IO_OUTPUT_LOW (64 * 1024)
#define IO_INPUT_HIGH (256 * 1024)
#define IO_LOWER_HIGH (64 * 1024)

struct io {
	struct event_base *base;
	struct bufferevent *bev;  /* topmost layer: read and write here */
	struct bufferevent *sock; /* the socket layer at the bottom */
	struct evbuffer_cb_entry *sock_cb;
	io_callback *cb;
	void *ctx;
	struct buf line;
	SSL *ssl;
	struct event *kick;
	/* Direct writes (plain accepted sockets): see io_flush_cb(). */
	struct event *flush;
	struct evbuffer_cb_entry *out_cb;
	bool direct;
	size_t drained_low;
	int timeout;
	bool connecting, tls_handshaking, closing, skipping_line, paused;
	bool congested;                 /* output above IO_OUTPUT_HIGH: see above */
	struct evbuffer_iovec reserved; /* io_output_reserve() */
	char error[160];
	/* deflate state (RFC 4978) */
	z_stream *zin, *zout;
};

static void io_event_cb(struct bufferevent *bev, short what, void *arg);

/* The socket is read unless the session paused it, the output is congested
   or the io is closing. */
static bool io_reading(const struct io *io)
{
	return !io->paused && !io->congested && !io->closing;
}

static void io_update_reading(struct io *io)
{
	if (io_reading(io))
		bufferevent_enable(io->bev, EV_READ);
	else
		bufferevent_disable(io->bev, EV_READ);
}

/* The write callback runs when the top layer's output falls to this. */
static void io_set_write_low(struct io *io)
{
	size_t low = io->drained_low;
	if (io->congested && low < IO_OUTPUT_LOW)
		low = IO_OUTPUT_LOW;
	if (io->closing)
		low = 0;
	bufferevent_setwatermark(io->bev, EV_WRITE, low, 0);
}

/* Output waiting in every layer, top to socket. */
static size_t io_pending_output(struct io *io)
{
	size_t n = 0;
	for (struct bufferevent *b = io->bev; b != NULL; b = bufferevent_get_underlying(b))
		n += evbuffer_get_length(bufferevent_get_output(b));
	return n;
}

static void io_uncongest(struct io *io)
{
	io->congested = false;
	io_set_write_low(io);
	io_update_reading(io);
	io_kick_input(io);
}

static void io_report(struct io *io, enum io_event ev)
{
	io->cb(io, ev, io->ctx);
}

static void io_read_cb(struct bufferevent *bev, void *arg)
{
	struct io *io = arg;
	if (!io->closing)
		io_report(io, IO_EVENT_INPUT);
}

/* Closing: done when the socket layer has sent everything, which with TLS
   or deflate is after the upper layers have drained into it. */
static void io_sock_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct io *io = arg;
	if (io->closing && info->n_deleted > 0 && evbuffer_get_length(buf) == 0 &&
	    evbuffer_get_length(bufferevent_get_output(io->bev)) == 0) {
		evbuffer_remove_cb_entry(buf, io->sock_cb);
		io->sock_cb = NULL;
		io_report(io, IO_EVENT_CLOSED);
	}
}

static void io_write_cb(struct bufferevent *bev, void *arg)
{
	struct io *io = arg;
	size_t pending = evbuffer_get_length(bufferevent_get_output(io->bev));
	if (!io->direct && io->flush != NULL && io->bev == io->sock && pending == 0) {
		/* libevent wrote the rest and dropped its write event: back to
		   direct writes. */
		io->direct = true;
		bufferevent_disable(io->sock, EV_WRITE);
	}
	if (io->closing) {
		if (pending != 0 || io->sock_cb != NULL)
			return;
		struct evbuffer *low = bufferevent_get_output(io->sock);
		if (io->sock != io->bev && evbuffer_get_length(low) > 0) {
			io->sock_cb = evbuffer_add_cb(low, io_sock_output_cb, io);
			return;
		}
		io_report(io, IO_EVENT_CLOSED);
		return;
	}
	if (io->congested && pending <= IO_OUTPUT_LOW)
		io_uncongest(io);
	if (io->drained_low > 0 && pending <= io->drained_low)
		io_report(io, IO_EVENT_DRAINED);
}

static void set_ssl_error(struct io *io)
{
	unsigned long e = bufferevent_get_openssl_error(io->bev);
	if (e == 0)
		e = ERR_get_error();
	if (e != 0) {
		char tmp[120];
		ERR_error_string_n(e, tmp, sizeof(tmp));
		snprintf(io->error, sizeof(io->error), "TLS error: %s", tmp);
	}
}

static void io_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct io *io = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (io->tls_handshaking) {
			io->tls_handshaking = false;
			io_report(io, IO_EVENT_TLS_DONE);
		} else if (io->connecting) {
			int one = 1;
			setsockopt(bufferevent_getfd(io->sock), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			io->connecting = false;
			io_report(io, IO_EVENT_CONNECTED);
		}
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		snprintf(io->error, sizeof(io->error), "timed out");
		io_report(io, IO_EVENT_TIMEOUT);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		int err = EVUTIL_SOCKET_ERROR();
		if (io->ssl != NULL)
			set_ssl_error(io);
		if (io->error[0] == '\0')
			snprintf(io->error, sizeof(io->error), "%s",
				 err ? evutil_socket_error_to_string(err) : "connection failed");
		io_report(io, io->closing ? IO_EVENT_CLOSED : IO_EVENT_ERROR);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		snprintf(io->error, sizeof(io->error), "connection closed by peer");
		io_report(io, io->closing ? IO_EVENT_CLOSED : IO_EVENT_EOF);
	}
}

static void io_attach(struct io *io, struct bufferevent *bev)
{
	io->bev = bev;
	bufferevent_setcb(bev, io_read_cb, io_write_cb, io_event_cb, io);
	if (io->timeout > 0) {
		struct timeval tv = {io->timeout, 0};
		bufferevent_set_timeouts(bev, &tv, &tv);
	}
	bufferevent_setwatermark(bev, EV_READ, 0, IO_INPUT_HIGH);
	short what = io->direct ? 0 : EV_WRITE;
	bufferevent_enable(bev, io_reading(io) ? EV_READ | what : what);
	io_set_write_low(io);
}

/* Direct writes.  A bufferevent writes only after epoll reports the socket
   writable: each reply costs an epoll_ctl to add the write event, a second
   loop turn, and another epoll_ctl to drop it.  On a plain socket the write
   event stays off instead; whatever is queued during a loop turn is written
   at the end of that turn (io->flush, activated on the first append), and
   only output the socket does not take at once goes back to libevent's
   write event until the buffer is empty again. */
static void io_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct io *io = arg;
	struct evbuffer *out = bufferevent_get_output(io->sock);
	if (!io->direct || evbuffer_get_length(out) == 0)
		return;
	/* The socket layer keeps its output frozen at the front between its
	   own writes. */
	evbuffer_unfreeze(out, 1);
	int n = evbuffer_write(out, bufferevent_getfd(io->sock));
	int err = errno;
	evbuffer_freeze(out, 1);
	if (n < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
		/* As libevent does after a failed write: no more writing.  The
		   error is reported now, since the socket reports it only once. */
		io->direct = false;
		snprintf(io->error, sizeof(io->error), "%s", strerror(err));
		io_report(io, io->closing ? IO_EVENT_CLOSED : IO_EVENT_ERROR);
		return;
	}
	if (evbuffer_get_length(out) > 0) {
		/* The socket is full: libevent writes the rest when it can. */
		io->direct = false;
		bufferevent_enable(io->sock, EV_WRITE);
		return;
	}
	/* What libevent's write callback would report now (may free io). */
	io_write_cb(io->sock, io);
}

static void io_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct io *io = arg;
	if (info->n_added > 0 && io->direct)
		event_active(io->flush, EV_WRITE, 0);
}

static void io_direct_stop(struct io *io)
{
	if (io->flush == NULL)
		return;
	evbuffer_remove_cb_entry(bufferevent_get_output(io->sock), io->out_cb);
	io->out_cb = NULL;
	event_free(io->flush);
	io->flush = NULL;
	if (io->direct) {
		io->direct = false;
		bufferevent_enable(io->sock, EV_WRITE);
	}
}

static struct io *io_alloc(struct event_base *base, io_callback *cb, void *ctx)
{
	struct io *io = xcalloc(1, sizeof(*io));
	io->base = base;
	io->cb = cb;
	io->ctx = ctx;
	return io;
}

struct io *io_new(struct event_base *base, int fd, io_callback *cb, void *ctx)
{
	struct io *io = io_alloc(base, cb, ctx);
	evutil_make_socket_nonblocking(fd);
	/* Replies leave in several writes (libevent sends at most 16 KB at a
	   time): with Nagle the last short segment would wait for the peer's
	   delayed ACK, 40 ms a time.  Not a TCP socket: harmless failure. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		log_fatal("bufferevent_socket_new() failed");
	io->sock = bev;
	io->flush = event_new(base, -1, 0, io_flush_cb, io);
	io->out_cb = evbuffer_add_cb(bufferevent_get_output(bev), io_output_cb, io);
	io->direct = true;
	io_attach(io, bev);
	/* A new bufferevent starts with writing enabled. */
	bufferevent_disable(bev, EV_WRITE);
	return io;
}

struct io *io_connect(struct event_base *base, const struct sockaddr *sa, socklen_t salen, io_callback *cb,
		      void *ctx)
{
	struct io *io = io_alloc(base, cb, ctx);
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		log_fatal("bufferevent_socket_new() failed");
	io->connecting = true;
	io->sock = bev;
	io_attach(io, bev);
	if (bufferevent_socket_connect(bev, sa, (int)salen) < 0) {
		/* Reported like any other failure, from the loop. */
		snprintf(io->error, sizeof(io->error), "connect failed: %s", strerror(errno));
	}
	return io;
}

static void zfree_stream(z_stream **zp, bool inflating)
{
	if (*zp == NULL)
		return;
	if (inflating)
		inflateEnd(*zp);
	else
		deflateEnd(*zp);
	free(*zp);
	*zp = NULL;
}

void io_free(struct io **iop)
{
	struct io *io = *iop;
	if (io == NULL)
		return;
	*iop = NULL;
	if (io->kick != NULL)
		event_free(io->kick);
	if (io->flush != NULL) {
		evbuffer_remove_cb_entry(bufferevent_get_output(io->sock), io->out_cb);
		event_free(io->flush);
	}
	if (io->sock_cb != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_output(io->sock), io->sock_cb);
	/* Freeing the top layer frees the ones below (BEV_OPT_CLOSE_ON_FREE). */
	bufferevent_free(io->bev);
	zfree_stream(&io->zin, true);
	zfree_stream(&io->zout, false);
	buf_free(&io->line);
	free(io);
}

void io_set_callback(struct io *io, io_callback *cb, void *ctx)
{
	io->cb = cb;
	io->ctx = ctx;
}

void io_set_timeout(struct io *io, int seconds)
{
	io->timeout = seconds;
	struct timeval tv = {seconds, 0};
	bufferevent_set_timeouts(io->bev, seconds > 0 ? &tv : NULL, seconds > 0 ? &tv : NULL);
}

static int io_push_tls(struct io *io, SSL *ssl, enum bufferevent_ssl_state state)
{
	/* Plain-text input sent ahead of the handshake is dropped. */
	struct evbuffer *in = bufferevent_get_input(io->bev);
	size_t discarded = evbuffer_get_length(in);
	evbuffer_drain(in, discarded);
	/* Filters below the top write through libevent's write events. */
	io_direct_stop(io);
	struct bufferevent *tls =
	    bufferevent_openssl_filter_new(io->base, io->bev, ssl, state, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		snprintf(io->error, sizeof(io->error), "cannot start TLS");
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	bufferevent_setwatermark(io->bev, EV_WRITE, 0, IO_LOWER_HIGH);
	io->ssl = ssl;
	io->tls_handshaking = true;
	io_attach(io, tls);
	return (int)discarded;
}

int io_start_tls_server(struct io *io, SSL_CTX *ctx)
{
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL)
		return -1;
	return io_push_tls(io, ssl, BUFFEREVENT_SSL_ACCEPTING);
}

int io_start_tls_client(struct io *io, SSL_CTX *ctx, const char *sni, const char *verify_host)
{
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL)
		return -1;
	if (sni != NULL)
		SSL_set_tlsext_host_name(ssl, sni);
	if (verify_host != NULL) {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (!SSL_set1_host(ssl, verify_host)) {
			SSL_free(ssl);
			return -1;
		}
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	}
	return io_push_tls(io, ssl, BUFFEREVENT_SSL_CONNECTING);
}

int io_start_tls_client_ssl(struct io *io, SSL *ssl)
{
	return io_push_tls(io, ssl, BUFFEREVENT_SSL_CONNECTING);
}

bool io_is_tls(const struct io *io)
{
	return io->ssl != NULL;
}

const char *io_tls_version(const struct io *io)
{
	return io->ssl != NULL ? SSL_get_version(io->ssl) : NULL;
}

const char *io_tls_cipher(const struct io *io)
{
	return io->ssl != NULL ? SSL_get_cipher_name(io->ssl) : NULL;
}

SSL *io_ssl(const struct io *io)
{
	return io->ssl;
}

/* ---- deflate layer (RFC 4978): raw deflate both ways, flushed per write. */

static enum bufferevent_filter_result zfilter(struct evbuffer *src, struct evbuffer *dst, z_stream *z,
					      bool inflating, enum bufferevent_flush_mode mode)
{
	while (evbuffer_get_length(src) > 0 || (!inflating && mode != BEV_NORMAL)) {
		size_t inlen = evbuffer_get_length(src);
		unsigned char *in =
		    inlen ? evbuffer_pullup(src, (ssize_t)(inlen > 65536 ? 65536 : inlen)) : NULL;
		size_t take = inlen > 65536 ? 65536 : inlen;
		struct evbuffer_iovec v;
		if (evbuffer_reserve_space(dst, 16384, &v, 1) < 1)
			return BEV_ERROR;
		z->next_in = in;
		z->avail_in = (uInt)take;
		z->next_out = v.iov_base;
		z->avail_out = (uInt)v.iov_len;
		int rc = inflating ? inflate(z, Z_SYNC_FLUSH) : deflate(z, Z_SYNC_FLUSH);
		if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END)
			return BEV_ERROR;
		v.iov_len -= z->avail_out;
		evbuffer_commit_space(dst, &v, 1);
		evbuffer_drain(src, take - z->avail_in);
		if (z->avail_out != 0 && z->avail_in == 0 && (inflating || evbuffer_get_length(src) == 0))
			break;
	}
	return BEV_OK;
}

static enum bufferevent_filter_result zin_filter(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
						 enum bufferevent_flush_mode mode, void *arg)
{
	struct io *io = arg;
	return zfilter(src, dst, io->zin, true, mode);
}

static enum bufferevent_filter_result zout_filter(struct evbuffer *src, struct evbuffer *dst,
						  ev_ssize_t limit, enum bufferevent_flush_mode mode,
						  void *arg)
{
	struct io *io = arg;
	if (evbuffer_get_length(src) == 0)
		return BEV_OK;
	return zfilter(src, dst, io->zout, false, BEV_FLUSH);
}

int io_start_deflate(struct io *io)
{
	io->zin = xcalloc(1, sizeof(z_stream));
	io->zout = xcalloc(1, sizeof(z_stream));
	io_direct_stop(io);
	if (inflateInit2(io->zin, -15) != Z_OK ||
	    deflateInit2(io->zout, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	struct bufferevent *z =
	    bufferevent_filter_new(io->bev, zin_filter, zout_filter, BEV_OPT_CLOSE_ON_FREE, NULL, io);
	if (z == NULL)
		return -1;
	bufferevent_setwatermark(io->bev, EV_WRITE, 0, IO_LOWER_HIGH);
	io_attach(io, z);
	return 0;
}

/* ---- input ---- */

bool io_congested(struct io *io)
{
	if (io->congested)
		return true;
	if (io_pending_output(io) < IO_OUTPUT_HIGH)
		return false;
	/* The peer is not reading: no more commands until it does. */
	io->congested = true;
	io_set_write_low(io);
	io_update_reading(io);
	if (io->direct)
		event_active(io->flush, EV_WRITE, 0);
	return true;
}

int io_read_line(struct io *io, size_t max, char **line_r, size_t *len_r)
{
	struct evbuffer *in = bufferevent_get_input(io->bev);
	if (io_congested(io))
		return 0;
	for (;;) {
		size_t eol_len;
		struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		size_t avail = evbuffer_get_length(in);
		if (p.pos < 0) {
			if (io->skipping_line) {
				evbuffer_drain(in, avail);
				return 0;
			}
			if (avail > max + 1) {
				/* Too long already: drop it and keep dropping to its LF. */
				evbuffer_drain(in, avail);
				io->skipping_line = true;
				return -1;
			}
			return 0;
		}
		size_t pos = (size_t)p.pos;
		if (io->skipping_line) {
			evbuffer_drain(in, pos + 1);
			io->skipping_line = false;
			continue;
		}
		size_t len = pos;
		buf_reset(&io->line);
		if (len > max + 1) {
			evbuffer_drain(in, pos + 1);
			return -1;
		}
		buf_reserve(&io->line, len + 1);
		evbuffer_remove(in, io->line.data, len);
		evbuffer_drain(in, 1);
		if (len > 0 && io->line.data[len - 1] == '\r')
			len--;
		if (len > max) {
			return -1;
		}
		io->line.len = len;
		io->line.data[len] = '\0';
		*line_r = io->line.data;
		*len_r = len;
		return 1;
	}
}

size_t io_input_peek(struct io *io, const char **data_r)
{
	struct evbuffer_iovec v;
	if (evbuffer_peek(bufferevent_get_input(io->bev), -1, NULL, &v, 1) < 1) {
		*data_r = NULL;
		return 0;
	}
	*data_r = v.iov_base;
	return v.iov_len;
}

void io_input_drain(struct io *io, size_t n)
{
	evbuffer_drain(bufferevent_get_input(io->bev), n);
}

size_t io_input_length(struct io *io)
{
	return evbuffer_get_length(bufferevent_get_input(io->bev));
}

void io_pause_input(struct io *io)
{
	io->paused = true;
	io_update_reading(io);
}

void io_resume_input(struct io *io)
{
	io->paused = false;
	io_update_reading(io);
}

static void io_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct io *io = arg;
	if (!io->closing && !io->paused && !io->congested)
		io_report(io, IO_EVENT_INPUT);
}

void io_kick_input(struct io *io)
{
	if (io->kick == NULL)
		io->kick = event_new(io->base, -1, 0, io_kick_cb, io);
	event_active(io->kick, 0, 0);
}

/* ---- output ---- */

void io_write(struct io *io, const void *data, size_t len)
{
	bufferevent_write(io->bev, data, len);
}

void io_write_str(struct io *io, const char *s)
{
	bufferevent_write(io->bev, s, strlen(s));
}

void io_printf(struct io *io, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	io_vprintf(io, fmt, ap);
	va_end(ap);
}

void io_vprintf(struct io *io, const char *fmt, va_list ap)
{
	evbuffer_add_vprintf(bufferevent_get_output(io->bev), fmt, ap);
}

char *io_output_reserve(struct io *io, size_t size)
{
	if (evbuffer_reserve_space(bufferevent_get_output(io->bev), (ev_ssize_t)size, &io->reserved, 1) != 1)
		log_panic("io_output_reserve(%zu): evbuffer_reserve_space() failed", size);
	return io->reserved.iov_base;
}

void io_output_commit(struct io *io, size_t used)
{
	if (used > io->reserved.iov_len)
		log_panic("io_output_commit(%zu) beyond the %zu bytes reserved", used, io->reserved.iov_len);
	io->reserved.iov_len = used;
	evbuffer_commit_space(bufferevent_get_output(io->bev), &io->reserved, 1);
	io->reserved.iov_len = 0;
}

ssize_t io_output_pread(struct io *io, int fd, uint64_t off, size_t len)
{
	/* Two extents: the free end of the last chain and a new one. */
	struct evbuffer *out = bufferevent_get_output(io->bev);
	struct evbuffer_iovec v[2];
	int nv = evbuffer_reserve_space(out, (ev_ssize_t)len, v, 2);
	if (nv < 1) {
		errno = ENOMEM;
		return -1;
	}
	size_t room = 0;
	for (int i = 0; i < nv; i++) {
		if (room + v[i].iov_len > len)
			v[i].iov_len = len - room;
		room += v[i].iov_len;
	}
	/* evbuffer_iovec is layout-compatible with struct iovec */
	ssize_t n = preadv(fd, (const struct iovec *)v, nv, (off_t)off);
	if (n <= 0) {
		int saved = errno;
		evbuffer_commit_space(out, v, 0);
		errno = saved;
		return n;
	}
	size_t got = (size_t)n;
	int used = 0;
	for (int i = 0; i < nv && got > 0; i++, used++) {
		if (v[i].iov_len > got)
			v[i].iov_len = got;
		got -= v[i].iov_len;
	}
	evbuffer_commit_space(out, v, used);
	return n;
}

size_t io_output_length(struct io *io)
{
	return evbuffer_get_length(bufferevent_get_output(io->bev));
}

void io_want_drained(struct io *io, size_t low)
{
	io->drained_low = low;
	io_set_write_low(io);
}

void io_close_after_flush(struct io *io)
{
	io->closing = true;
	io_update_reading(io);
	io_set_write_low(io);
	if (io_output_length(io) == 0) {
		/* Report from the loop, not from inside the caller. */
		bufferevent_trigger(io->bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
	}
}

const char *io_error(const struct io *io)
{
	return io->error[0] ? io->error : "no error";
}

int io_fd(const struct io *io)
{
	return bufferevent_getfd(io->bev);
}
