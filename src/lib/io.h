#ifndef LIB_IO_H
#define LIB_IO_H
/* The io object: one connection's socket, its input and output buffers, TLS
   and timeouts, built on a stack of libevent bufferevents (socket, then TLS,
   then optionally deflate).  It reports events to one callback; protocol
   code asks for lines (or reads the input raw for DATA and literals) and
   queues replies.  STARTTLS is one call. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <openssl/ssl.h>

struct event_base;
struct io;

enum io_event {
	IO_EVENT_INPUT,     /* new bytes are in the input buffer */
	IO_EVENT_DRAINED,   /* output fell to the low-water mark (io_want_drained) */
	IO_EVENT_CONNECTED, /* io_connect() finished */
	IO_EVENT_TLS_DONE,  /* TLS handshake finished (server or client) */
	IO_EVENT_TIMEOUT,   /* nothing read (or written) within the timeout */
	IO_EVENT_EOF,       /* the peer closed the connection */
	IO_EVENT_ERROR,     /* socket or TLS failure: io_error() says which */
	IO_EVENT_CLOSED,    /* io_close_after_flush() finished sending */
};

typedef void io_callback(struct io *io, enum io_event event, void *ctx);

/* Wraps an accepted (or connected) socket; takes ownership of fd. */
struct io *io_new(struct event_base *base, int fd, io_callback *cb, void *ctx);
/* Starts a non-blocking connect; IO_EVENT_CONNECTED or IO_EVENT_ERROR follows. */
struct io *io_connect(struct event_base *base, const struct sockaddr *sa, socklen_t salen, io_callback *cb,
		      void *ctx);
/* Frees the io and closes the socket.  Safe inside the io's own callback. */
void io_free(struct io **io);
void io_set_callback(struct io *io, io_callback *cb, void *ctx);

/* Idle timeout in seconds for reading and writing (0: none). */
void io_set_timeout(struct io *io, int seconds);

/* TLS.  Input still buffered in plain text is discarded first (RFC 3207
   section 4.2: nothing sent before the handshake may be acted on); the
   number of bytes discarded is returned, or -1 on error.  IO_EVENT_TLS_DONE
   or IO_EVENT_ERROR follows. */
int io_start_tls_server(struct io *io, SSL_CTX *ctx);
/* sni may be NULL; verify_host, when non-NULL, is checked against the
   certificate (the context must then verify peers). */
int io_start_tls_client(struct io *io, SSL_CTX *ctx, const char *sni, const char *verify_host);
/* The same with an SSL the caller set up (lib/tls.h: tls_client_ssl); the
   io owns it from then on, also when -1 is returned. */
int io_start_tls_client_ssl(struct io *io, SSL *ssl);
bool io_is_tls(const struct io *io);
/* "TLSv1.3" and the cipher name, or NULL without TLS. */
const char *io_tls_version(const struct io *io);
const char *io_tls_cipher(const struct io *io);
SSL *io_ssl(const struct io *io);

/* Compression (COMPRESS=DEFLATE, RFC 4978) over everything that follows. */
int io_start_deflate(struct io *io);

/* Flow control: true while the peer leaves too much output unread (above a
   high-water mark, counted in every layer).  The socket is then not read,
   and the caller must consume no more input; IO_EVENT_INPUT follows once
   the output falls to the low-water mark.  io_read_line() checks this
   itself; protocols that read io_input() raw for commands call it first. */
bool io_congested(struct io *io);

/* Reads one line terminated by LF (a CR before it is removed).  Returns 0
   while io_congested(); otherwise 1
   with the line (NUL-terminated, valid until the next call; it may contain
   NUL bytes, so use *len_r), 0 when no whole line is buffered, or -1 once
   for a line longer than max bytes: that line is discarded up to its LF. */
int io_read_line(struct io *io, size_t max, char **line_r, size_t *len_r);
/* Raw reads (DATA, BDAT, literals): the first contiguous run of buffered
   input, its length returned (0 when nothing is buffered).  The bytes stay
   until io_input_drain() removes them; the pointer is valid until then. */
size_t io_input_peek(struct io *io, const char **data_r);
/* Removes n bytes (at most io_input_length()) from the front of the input. */
void io_input_drain(struct io *io, size_t n);
size_t io_input_length(struct io *io);
/* Stops and restarts reading from the socket (and IO_EVENT_INPUT), e.g.
   while a reply waits on the disk.  Buffered input stays. */
void io_pause_input(struct io *io);
void io_resume_input(struct io *io);
/* Asks for IO_EVENT_INPUT on the next loop turn (to process input that was
   already buffered when the session resumes). */
void io_kick_input(struct io *io);

void io_write(struct io *io, const void *data, size_t len);
void io_write_str(struct io *io, const char *s);
void io_printf(struct io *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void io_vprintf(struct io *io, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Zero-copy writes: room for size bytes at the end of the output, to be
   filled and then committed with the number of bytes used (<= size).
   Nothing else may be written to the io in between. */
char *io_output_reserve(struct io *io, size_t size);
void io_output_commit(struct io *io, size_t used);
/* Reads up to len bytes of fd at offset off straight into the output
   (pread(2), no copy through a buffer of ours).  Returns the bytes read, 0
   at the end of the file, or -1 with errno. */
ssize_t io_output_pread(struct io *io, int fd, uint64_t off, size_t len);
size_t io_output_length(struct io *io);
/* Asks for IO_EVENT_DRAINED when pending output falls to low bytes or fewer
   (streaming large responses); 0 disables. */
void io_want_drained(struct io *io, size_t low);
/* Stops reading, sends what is queued, then reports IO_EVENT_CLOSED. */
void io_close_after_flush(struct io *io);

const char *io_error(const struct io *io);
int io_fd(const struct io *io);
#endif
