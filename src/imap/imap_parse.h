#ifndef IMAP_IMAP_PARSE_H
#define IMAP_IMAP_PARSE_H
/* The IMAP command parser (RFC 3501 section 9, RFC 9051, RFC 7888).

   imap_parser_feed() takes the client's bytes in chunks of any size and
   collects one command: its lines and the literals between them.  It stops
   right after the command's final CRLF so that what follows (an
   AUTHENTICATE response, IDLE's DONE) stays with the caller.  Once the
   command is complete it is turned into a tree of typed arguments (atoms,
   quoted strings, literals, NIL, parenthesised lists); the command-specific
   parsers below (sequence sets, FETCH attributes, SEARCH keys, STORE, flags,
   mailbox names) turn those into typed structs.

   Hard limits bound everything: the length of a line of command text, the
   size of one literal (announced sizes are checked before any byte is read),
   the total size of a command, the nesting depth of lists and the number of
   arguments. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct pool;

struct imap_parse_limits {
	size_t max_line;           /* one line of command text (default 64 KiB) */
	size_t max_literal;        /* one literal outside APPEND (default 64 KiB) */
	size_t max_append_literal; /* one APPEND literal (default 64 MiB) */
	size_t max_command;        /* text plus literals (default: append limit + 1 MiB) */
	unsigned int max_depth;    /* list nesting (default 32) */
	unsigned int max_args;     /* arguments in the whole tree (default 10000) */
	/* A non-synchronising literal over the limits is fatal (the caller
	   says BYE and closes) instead of being skipped; RFC 7888 section 4
	   allows both. */
	bool big_literal_fatal;
};

enum imap_arg_type {
	IMAP_ARG_ATOM,    /* also "BODY[HEADER.FIELDS (A B)]<0.10>" as one atom */
	IMAP_ARG_STRING,  /* quoted string, unescaped */
	IMAP_ARG_LITERAL, /* {n} or {n+}; literal8 ~{n} sets literal8 */
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	bool literal8;
	const char *str; /* NUL-terminated text (may hold NULs: use len) */
	size_t len;
	struct imap_arg *list; /* IMAP_ARG_LIST */
	unsigned int count;
};

struct imap_command {
	const char *tag;
	const char *name; /* uppercased */
	struct imap_arg *args;
	unsigned int count;
};

enum imap_parse_result {
	IMAP_PARSE_MORE,    /* all input used; feed more */
	IMAP_PARSE_LITERAL, /* a synchronising literal was announced: send a
			       "+ " continuation, then feed more */
	IMAP_PARSE_COMMAND, /* a command is complete: imap_parser_command() */
	IMAP_PARSE_ERROR,   /* the command is rejected: answer
			       "<imap_parser_tag()> BAD <imap_parser_error()>" */
};

struct imap_parser;

/* limits may be NULL for the defaults; zero fields mean the default. */
struct imap_parser *imap_parser_create(const struct imap_parse_limits *limits);
/* Changes the limits, from the next command on: call it only while the
   parser is not busy (before authentication and after differ). */
void imap_parser_set_limits(struct imap_parser *parser, const struct imap_parse_limits *limits);
void imap_parser_destroy(struct imap_parser **parser);

/* Feeds len bytes; *used_r is how many were consumed (the rest belongs to
   what follows the command or to the next call).  After IMAP_PARSE_ERROR
   the parser discards the rest of the failed command by itself (the rest of
   an overlong line, a non-synchronising literal that was too big).
   After IMAP_PARSE_COMMAND or IMAP_PARSE_ERROR, the command and error stay
   valid until the next feed or imap_parser_reset(). */
enum imap_parse_result imap_parser_feed(struct imap_parser *parser, const void *data, size_t len,
					size_t *used_r);
const struct imap_command *imap_parser_command(const struct imap_parser *parser);
/* The tag of the failed command, or "*" when it had no valid tag. */
const char *imap_parser_tag(const struct imap_parser *parser);
const char *imap_parser_error(const struct imap_parser *parser);
/* True when the error means the connection cannot go on (the client keeps
   sending a literal far beyond every limit): send BYE and close. */
bool imap_parser_fatal(const struct imap_parser *parser);
/* True while bytes of a command have been received but it is not complete. */
bool imap_parser_busy(const struct imap_parser *parser);
/* Frees the memory of the last command (keeps the parser small while the
   connection is idle). */
void imap_parser_reset(struct imap_parser *parser);
/* Hands the memory of the last command's arguments (literals included)
   to the caller, who destroys it when done with them: APPEND keeps its
   literals for the job that stores them instead of copying them.  NULL
   when there is no command. */
struct pool *imap_parser_take_pool(struct imap_parser *parser);

/* ---- argument helpers ---- */

/* An atom, quoted string or literal (astring; NIL is an atom here). */
bool imap_arg_is_astring(const struct imap_arg *arg);
/* The text of an astring, or NULL. */
const char *imap_arg_astring(const struct imap_arg *arg);
/* An nstring: NIL gives *str_r NULL.  Returns false when neither. */
bool imap_arg_nstring(const struct imap_arg *arg, const char **str_r);
bool imap_arg_atom_equals(const struct imap_arg *arg, const char *atom);
/* number / number64 (RFC 9051): digits only, no sign. */
bool imap_parse_number(const char *s, uint32_t *num_r);
bool imap_parse_number64(const char *s, uint64_t *num_r);
/* nz-number */
bool imap_parse_nz_number(const char *s, uint32_t *num_r);
/* True when s is a valid tag (ASTRING-CHAR except "+"). */
bool imap_tag_valid(const char *s, size_t len);

/* ---- sequence sets (RFC 3501 sequence-set, RFC 5182 "$") ---- */

/* "*": beyond every number, which are 32 bits (RFC 3501 9: nz-number
   is up to 4294967295, a valid UID that is not "*"). */
#define IMAP_SEQ_STAR UINT64_MAX

struct imap_seq_range {
	uint64_t lo, hi; /* lo <= hi; IMAP_SEQ_STAR is "*", others fit 32 bits */
};

struct imap_seqset {
	struct imap_seq_range *ranges;
	unsigned int count;
	bool saved; /* "$": the SEARCHRES result */
};

/* Parses a sequence set into the pool; ranges are normalised to lo <= hi
   ("5:2" is 2:5, "*:4" is 4:*).  Returns 0, or -1 with *error_r. */
int imap_seqset_parse(struct pool *pool, const char *s, struct imap_seqset **set_r, const char **error_r);
/* A range end with "*" meaning max. */
uint32_t imap_seq_resolve(uint64_t n, uint32_t max);
/* True when n is in the set, with "*" meaning max. */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t max);
/* Largest number named in the set ("*" counts as max). */
uint32_t imap_seqset_max(const struct imap_seqset *set, uint32_t max);

/* ---- flags ---- */

enum imap_flag {
	IMAP_FLAG_SEEN = 1 << 0,
	IMAP_FLAG_ANSWERED = 1 << 1,
	IMAP_FLAG_FLAGGED = 1 << 2,
	IMAP_FLAG_DELETED = 1 << 3,
	IMAP_FLAG_DRAFT = 1 << 4,
	IMAP_FLAG_RECENT = 1 << 5,
};

struct imap_flags {
	unsigned int flags; /* enum imap_flag */
	const char **keywords;
	unsigned int keyword_count;
};

/* Parses a flag list (a LIST, or a single flag atom when allow_single) of
   system flags and keywords.  \Recent is refused (RFC 3501 6.4.6: it cannot
   be stored).  0, or -1 with *error_r. */
int imap_flags_parse(struct pool *pool, const struct imap_arg *arg, bool allow_single,
		     struct imap_flags *flags_r, const char **error_r);
/* "\\Seen" etc. for one flag bit. */
const char *imap_flag_name(enum imap_flag flag);
/* A keyword atom: ATOM-CHAR except "]" (flag-keyword). */
bool imap_keyword_valid(const char *s);

/* ---- STORE (RFC 3501 6.4.6, RFC 7162 3.1.3) ---- */

enum imap_store_op { IMAP_STORE_SET, IMAP_STORE_ADD, IMAP_STORE_REMOVE };

struct imap_store_args {
	struct imap_seqset *set;
	enum imap_store_op op;
	bool silent;
	bool has_unchangedsince;
	uint64_t unchangedsince;
	struct imap_flags flags;
};

/* Parses the arguments after "STORE": sequence-set [modifiers] item value. */
int imap_store_parse(struct pool *pool, const struct imap_arg *args, unsigned int count,
		     struct imap_store_args *store_r, const char **error_r);

/* ---- APPEND (RFC 3501 6.3.11, RFC 3502 MULTIAPPEND, RFC 3516, RFC 6855) ---- */

struct imap_append_msg {
	struct imap_flags flags;
	time_t date;      /* 0 when none was given */
	const char *data; /* the literal: points into the arguments */
	size_t len;
	bool binary; /* sent as literal8 (also inside "UTF8 (...)") */
};

/* Parses what follows APPEND's mailbox: one or more messages, each
   [flag-list] [date-time] append-data, where append-data is a literal, a
   literal8, or "UTF8" SP "(" literal8 ")" (RFC 6855 4).  *msgs_r (in the
   pool) gets *count_r >= 1 messages.  0, or -1 with *error_r (BAD). */
int imap_append_parse(struct pool *pool, const struct imap_arg *args, unsigned int count,
		      struct imap_append_msg **msgs_r, unsigned int *count_r, const char **error_r);

/* ---- FETCH attributes ---- */

enum imap_fetch_item {
	IMAP_FETCH_FLAGS = 1 << 0,
	IMAP_FETCH_INTERNALDATE = 1 << 1,
	IMAP_FETCH_RFC822_SIZE = 1 << 2,
	IMAP_FETCH_ENVELOPE = 1 << 3,
	IMAP_FETCH_BODY = 1 << 4, /* non-extensible BODYSTRUCTURE */
	IMAP_FETCH_BODYSTRUCTURE = 1 << 5,
	IMAP_FETCH_UID = 1 << 6,
	IMAP_FETCH_MODSEQ = 1 << 7,
	IMAP_FETCH_RFC822 = 1 << 8,        /* = BODY[] (sets \Seen) */
	IMAP_FETCH_RFC822_HEADER = 1 << 9, /* = BODY.PEEK[HEADER] */
	IMAP_FETCH_RFC822_TEXT = 1 << 10,  /* = BODY[TEXT] (sets \Seen) */
	IMAP_FETCH_SAVEDATE = 1 << 11,
	IMAP_FETCH_EMAILID = 1 << 12,  /* RFC 8474 */
	IMAP_FETCH_THREADID = 1 << 13, /* RFC 8474 */
	IMAP_FETCH_PREVIEW = 1 << 14,  /* RFC 8970 */
};

enum imap_section_spec {
	IMAP_SECTION_ALL, /* BODY[] or BODY[1.2] */
	IMAP_SECTION_HEADER,
	IMAP_SECTION_HEADER_FIELDS,
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT,
	IMAP_SECTION_MIME,
};

#define IMAP_SECTION_MAX_PARTS 32

struct imap_fetch_body {
	bool peek;
	bool binary;      /* BINARY[...] (RFC 3516) */
	bool binary_size; /* BINARY.SIZE[...] */
	uint32_t parts[IMAP_SECTION_MAX_PARTS];
	unsigned int part_count;
	enum imap_section_spec spec;
	const char **fields; /* HEADER.FIELDS[.NOT] names */
	unsigned int field_count;
	bool partial;
	uint32_t offset, length;
	const char *section; /* the section text as it is echoed back:
				"HEADER.FIELDS (FROM TO)" */
};

struct imap_fetch_atts {
	unsigned int items; /* enum imap_fetch_item */
	struct imap_fetch_body *bodies;
	unsigned int body_count;
	bool preview_lazy; /* every PREVIEW asked was PREVIEW (LAZY) */
	/* modifiers (RFC 7162) */
	bool has_changedsince;
	uint64_t changedsince;
	bool vanished;
};

/* Parses the FETCH attribute argument (a macro, one attribute or a list)
   and the optional modifier list that follows it. */
int imap_fetch_parse(struct pool *pool, const struct imap_arg *args, unsigned int count,
		     struct imap_fetch_atts *atts_r, const char **error_r);
/* True when fetching the attributes sets \Seen (non-PEEK bodies). */
bool imap_fetch_sets_seen(const struct imap_fetch_atts *atts);

/* ---- SEARCH (RFC 3501 6.4.4, RFC 4731, RFC 5182, RFC 7162) ---- */

enum imap_search_type {
	IMAP_SK_ALL,
	IMAP_SK_AND,
	IMAP_SK_OR,
	IMAP_SK_NOT,
	IMAP_SK_SEQSET,
	IMAP_SK_UID,
	IMAP_SK_FLAG,   /* flag set: ANSWERED DELETED DRAFT FLAGGED SEEN RECENT */
	IMAP_SK_UNFLAG, /* flag clear */
	IMAP_SK_NEW,    /* RECENT UNSEEN */
	IMAP_SK_OLD,    /* NOT RECENT */
	IMAP_SK_KEYWORD,
	IMAP_SK_UNKEYWORD,
	IMAP_SK_BEFORE,
	IMAP_SK_ON,
	IMAP_SK_SINCE, /* internal date */
	IMAP_SK_SENTBEFORE,
	IMAP_SK_SENTON,
	IMAP_SK_SENTSINCE, /* Date: header */
	IMAP_SK_LARGER,
	IMAP_SK_SMALLER,
	IMAP_SK_HEADER, /* also SUBJECT */
	IMAP_SK_BODY,
	IMAP_SK_TEXT,
	IMAP_SK_MODSEQ,
	IMAP_SK_OLDER,
	IMAP_SK_YOUNGER, /* RFC 5032 */
	IMAP_SK_ADDRESS, /* BCC CC FROM TO: header is the field */
	IMAP_SK_EMAILID, /* RFC 8474 6: value is the object id */
	IMAP_SK_THREADID,
};

struct imap_search_key {
	enum imap_search_type type;
	struct imap_search_key *children; /* AND, OR (two), NOT (one) */
	struct imap_search_key *next;     /* sibling */
	unsigned int flag;                /* enum imap_flag */
	const char *header;               /* HEADER name */
	const char *value;                /* string to look for, keyword */
	uint64_t number;                  /* size, modseq, seconds */
	time_t date;                      /* midnight UTC of the day */
	struct imap_seqset *set;
};

enum imap_search_return {
	IMAP_SEARCH_RETURN_MIN = 1 << 0,
	IMAP_SEARCH_RETURN_MAX = 1 << 1,
	IMAP_SEARCH_RETURN_ALL = 1 << 2,
	IMAP_SEARCH_RETURN_COUNT = 1 << 3,
	IMAP_SEARCH_RETURN_SAVE = 1 << 4,
};

struct imap_search_args {
	bool esearch;                /* RETURN (...) was given */
	unsigned int returns;        /* enum imap_search_return (ALL when empty) */
	const char *charset;         /* NULL when not given */
	struct imap_search_key *key; /* an IMAP_SK_AND of the top-level keys */
	bool uses_modseq;            /* a MODSEQ key appears (RFC 7162 3.1.5) */
};

/* Parses SEARCH's arguments.  Returns 0, -1 with *error_r for BAD, or -2
   for an unsupported charset (NO [BADCHARSET]). */
int imap_search_parse(struct pool *pool, const struct imap_arg *args, unsigned int count,
		      struct imap_search_args *search_r, const char **error_r);
/* Parses only a key list (SORT and THREAD pass their own charset). */
int imap_search_parse_keys(struct pool *pool, const struct imap_arg *args, unsigned int count,
			   struct imap_search_key **key_r, bool *uses_modseq_r, const char **error_r);
/* date = "d-Mon-yyyy" (optionally quoted): midnight UTC of that day. */
bool imap_parse_date(const char *s, time_t *date_r);
/* date-time = "dd-Mon-yyyy hh:mm:ss +zzzz" (APPEND). */
bool imap_parse_datetime(const char *s, time_t *time_r, int *tz_minutes_r);

/* ---- mailbox names (RFC 3501 5.1.3 modified UTF-7) ---- */

/* Decodes a modified UTF-7 name to UTF-8 (into the pool).  Returns NULL
   when the encoding is invalid. */
char *imap_utf7_to_utf8(struct pool *pool, const char *name);
/* Encodes a UTF-8 name as modified UTF-7.  NULL when not valid UTF-8 or
   when it holds control characters. */
char *imap_utf8_to_utf7(struct pool *pool, const char *name);
/* Parses a mailbox argument: an astring; "INBOX" in any case becomes
   "INBOX".  The result is the name as IMAP and the store spell it (modified
   UTF-7): without utf8 the name must be valid modified UTF-7; with utf8
   (UTF8=ACCEPT, RFC 6855) it must be UTF-8 and is encoded.  1 with
   *name_r; 0 with *error_r when the argument is well-formed but no mailbox
   can have that name (the answer is NO: RFC 3501 7.1.2, a command the
   server understood but cannot carry out); -1 with *error_r when it is not
   an astring (BAD). */
int imap_mailbox_parse(struct pool *pool, const struct imap_arg *arg, bool utf8, const char **name_r,
		       const char **error_r);
#endif
