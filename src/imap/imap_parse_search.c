/* SEARCH program parsing (RFC 3501 6.4.4 and section 9 search-key,
   RFC 4731 ESEARCH RETURN options, RFC 5182 SAVE and "$", RFC 7162 MODSEQ,
   RFC 5032 OLDER/YOUNGER, RFC 8474 EMAILID/THREADID). */
#include "imap/imap_parse.h"
#include "lib/xalloc.h"

#include <string.h>
#include <strings.h>

#define SEARCH_MAX_DEPTH 32

struct search_ctx {
	struct pool *pool;
	const struct imap_arg *args;
	unsigned int count, pos;
	bool uses_modseq;
	const char *error;
};

enum key_arg { KA_NONE, KA_STRING, KA_DATE, KA_NUMBER, KA_HEADER, KA_KEYWORD, KA_OBJECTID };

static const struct {
	const char *name;
	enum imap_search_type type;
	enum key_arg arg;
	unsigned int flag;
	const char *header;
} keys[] = {
    {"ALL", IMAP_SK_ALL, KA_NONE, 0, NULL},
    {"ANSWERED", IMAP_SK_FLAG, KA_NONE, IMAP_FLAG_ANSWERED, NULL},
    {"DELETED", IMAP_SK_FLAG, KA_NONE, IMAP_FLAG_DELETED, NULL},
    {"DRAFT", IMAP_SK_FLAG, KA_NONE, IMAP_FLAG_DRAFT, NULL},
    {"FLAGGED", IMAP_SK_FLAG, KA_NONE, IMAP_FLAG_FLAGGED, NULL},
    {"SEEN", IMAP_SK_FLAG, KA_NONE, IMAP_FLAG_SEEN, NULL},
    {"RECENT", IMAP_SK_FLAG, KA_NONE, IMAP_FLAG_RECENT, NULL},
    {"UNANSWERED", IMAP_SK_UNFLAG, KA_NONE, IMAP_FLAG_ANSWERED, NULL},
    {"UNDELETED", IMAP_SK_UNFLAG, KA_NONE, IMAP_FLAG_DELETED, NULL},
    {"UNDRAFT", IMAP_SK_UNFLAG, KA_NONE, IMAP_FLAG_DRAFT, NULL},
    {"UNFLAGGED", IMAP_SK_UNFLAG, KA_NONE, IMAP_FLAG_FLAGGED, NULL},
    {"UNSEEN", IMAP_SK_UNFLAG, KA_NONE, IMAP_FLAG_SEEN, NULL},
    {"NEW", IMAP_SK_NEW, KA_NONE, 0, NULL},
    {"OLD", IMAP_SK_OLD, KA_NONE, 0, NULL},
    {"KEYWORD", IMAP_SK_KEYWORD, KA_KEYWORD, 0, NULL},
    {"UNKEYWORD", IMAP_SK_UNKEYWORD, KA_KEYWORD, 0, NULL},
    {"BEFORE", IMAP_SK_BEFORE, KA_DATE, 0, NULL},
    {"ON", IMAP_SK_ON, KA_DATE, 0, NULL},
    {"SINCE", IMAP_SK_SINCE, KA_DATE, 0, NULL},
    {"SENTBEFORE", IMAP_SK_SENTBEFORE, KA_DATE, 0, NULL},
    {"SENTON", IMAP_SK_SENTON, KA_DATE, 0, NULL},
    {"SENTSINCE", IMAP_SK_SENTSINCE, KA_DATE, 0, NULL},
    {"LARGER", IMAP_SK_LARGER, KA_NUMBER, 0, NULL},
    {"SMALLER", IMAP_SK_SMALLER, KA_NUMBER, 0, NULL},
    {"OLDER", IMAP_SK_OLDER, KA_NUMBER, 0, NULL},
    {"YOUNGER", IMAP_SK_YOUNGER, KA_NUMBER, 0, NULL},
    {"BCC", IMAP_SK_ADDRESS, KA_STRING, 0, "Bcc"},
    {"CC", IMAP_SK_ADDRESS, KA_STRING, 0, "Cc"},
    {"FROM", IMAP_SK_ADDRESS, KA_STRING, 0, "From"},
    {"SUBJECT", IMAP_SK_HEADER, KA_STRING, 0, "Subject"},
    {"TO", IMAP_SK_ADDRESS, KA_STRING, 0, "To"},
    {"HEADER", IMAP_SK_HEADER, KA_HEADER, 0, NULL},
    {"BODY", IMAP_SK_BODY, KA_STRING, 0, NULL},
    {"TEXT", IMAP_SK_TEXT, KA_STRING, 0, NULL},
    {"EMAILID", IMAP_SK_EMAILID, KA_OBJECTID, 0, NULL},
    {"THREADID", IMAP_SK_THREADID, KA_OBJECTID, 0, NULL},
};

/* objectid = 1*255(ALPHA / DIGIT / "_" / "-") (RFC 8474 7) */
static bool objectid_valid(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");
	return n > 0 && n <= 255 && s[n] == '\0';
}

static const struct imap_arg *next_arg(struct search_ctx *c)
{
	if (c->pos >= c->count) {
		c->error = "Missing search argument";
		return NULL;
	}
	return &c->args[c->pos++];
}

static const char *next_astring(struct search_ctx *c)
{
	const struct imap_arg *a = next_arg(c);
	if (a == NULL)
		return NULL;
	const char *s = imap_arg_astring(a);
	if (s == NULL)
		c->error = "Invalid search string";
	return s;
}

static struct imap_search_key *parse_key(struct search_ctx *c, unsigned int depth);

static struct imap_search_key *new_key(struct search_ctx *c, enum imap_search_type type)
{
	struct imap_search_key *k = pool_alloc(c->pool, sizeof(*k));
	k->type = type;
	return k;
}

/* MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162 3.1.5) */
static struct imap_search_key *parse_modseq(struct search_ctx *c)
{
	struct imap_search_key *k = new_key(c, IMAP_SK_MODSEQ);
	const char *s = next_astring(c);
	if (s == NULL)
		return NULL;
	if (s[0] == '/' || c->args[c->pos - 1].type != IMAP_ARG_ATOM) {
		/* entry name, then "priv" / "shared" / "all" */
		const char *type = next_astring(c);
		if (type == NULL)
			return NULL;
		if (strcasecmp(type, "priv") != 0 && strcasecmp(type, "shared") != 0 &&
		    strcasecmp(type, "all") != 0) {
			c->error = "Invalid MODSEQ entry type";
			return NULL;
		}
		s = next_astring(c);
		if (s == NULL)
			return NULL;
	}
	if (!imap_parse_number64(s, &k->number)) {
		c->error = "Invalid MODSEQ value";
		return NULL;
	}
	c->uses_modseq = true;
	return k;
}

static struct imap_search_key *parse_named(struct search_ctx *c, const char *name, unsigned int depth)
{
	if (strcasecmp(name, "NOT") == 0) {
		struct imap_search_key *k = new_key(c, IMAP_SK_NOT);
		k->children = parse_key(c, depth + 1);
		return k->children != NULL ? k : NULL;
	}
	if (strcasecmp(name, "OR") == 0) {
		struct imap_search_key *k = new_key(c, IMAP_SK_OR);
		k->children = parse_key(c, depth + 1);
		if (k->children == NULL)
			return NULL;
		k->children->next = parse_key(c, depth + 1);
		return k->children->next != NULL ? k : NULL;
	}
	if (strcasecmp(name, "UID") == 0) {
		struct imap_search_key *k = new_key(c, IMAP_SK_UID);
		const struct imap_arg *a = next_arg(c);
		if (a == NULL)
			return NULL;
		if (a->type != IMAP_ARG_ATOM || imap_seqset_parse(c->pool, a->str, &k->set, &c->error) < 0) {
			if (a->type != IMAP_ARG_ATOM)
				c->error = "Invalid UID set";
			return NULL;
		}
		return k;
	}
	if (strcasecmp(name, "MODSEQ") == 0)
		return parse_modseq(c);
	for (size_t i = 0; i < N_ELEMENTS(keys); i++) {
		if (strcasecmp(name, keys[i].name) != 0)
			continue;
		struct imap_search_key *k = new_key(c, keys[i].type);
		k->flag = keys[i].flag;
		k->header = keys[i].header;
		const char *s;
		switch (keys[i].arg) {
		case KA_NONE:
			return k;
		case KA_HEADER:
			if ((k->header = next_astring(c)) == NULL)
				return NULL;
			/* fall through */
		case KA_STRING:
			if ((k->value = next_astring(c)) == NULL)
				return NULL;
			return k;
		case KA_KEYWORD:
		case KA_OBJECTID:
			if ((s = next_astring(c)) == NULL)
				return NULL;
			if (keys[i].arg == KA_KEYWORD ? !imap_keyword_valid(s) : !objectid_valid(s)) {
				c->error =
				    keys[i].arg == KA_KEYWORD ? "Invalid keyword" : "Invalid object id";
				return NULL;
			}
			k->value = s;
			return k;
		case KA_DATE:
			if ((s = next_astring(c)) == NULL)
				return NULL;
			if (!imap_parse_date(s, &k->date)) {
				c->error = "Invalid date";
				return NULL;
			}
			return k;
		case KA_NUMBER:
			if ((s = next_astring(c)) == NULL)
				return NULL;
			if (!imap_parse_number64(s, &k->number)) {
				c->error = "Invalid number";
				return NULL;
			}
			if ((k->type == IMAP_SK_OLDER || k->type == IMAP_SK_YOUNGER) && k->number == 0) {
				c->error = "Invalid interval";
				return NULL;
			}
			return k;
		}
	}
	/* a sequence set */
	struct imap_search_key *k = new_key(c, IMAP_SK_SEQSET);
	const char *err;
	if (imap_seqset_parse(c->pool, name, &k->set, &err) < 0) {
		c->error = "Unknown search key";
		return NULL;
	}
	return k;
}

static struct imap_search_key *parse_key_list(struct search_ctx *c, const struct imap_arg *args,
					      unsigned int count, unsigned int depth)
{
	struct search_ctx sub = {.pool = c->pool, .args = args, .count = count};
	struct imap_search_key *k = new_key(c, IMAP_SK_AND), **tail = &k->children;
	if (count == 0) {
		c->error = "Empty search key list";
		return NULL;
	}
	while (sub.pos < sub.count) {
		struct imap_search_key *child = parse_key(&sub, depth + 1);
		if (child == NULL) {
			c->error = sub.error;
			return NULL;
		}
		*tail = child;
		tail = &child->next;
	}
	c->uses_modseq |= sub.uses_modseq;
	return k;
}

static struct imap_search_key *parse_key(struct search_ctx *c, unsigned int depth)
{
	if (depth > SEARCH_MAX_DEPTH) {
		c->error = "Search program too deeply nested";
		return NULL;
	}
	const struct imap_arg *a = next_arg(c);
	if (a == NULL)
		return NULL;
	if (a->type == IMAP_ARG_LIST)
		return parse_key_list(c, a->list, a->count, depth);
	if (a->type != IMAP_ARG_ATOM) {
		c->error = "Search key expected";
		return NULL;
	}
	return parse_named(c, a->str, depth);
}

int imap_search_parse_keys(struct pool *pool, const struct imap_arg *args, unsigned int count,
			   struct imap_search_key **key_r, bool *uses_modseq_r, const char **error_r)
{
	struct search_ctx c = {.pool = pool};
	struct imap_search_key *k = parse_key_list(&c, args, count, 0);
	if (k == NULL) {
		*error_r = c.error != NULL ? c.error : "Invalid search program";
		return -1;
	}
	*key_r = k;
	*uses_modseq_r = c.uses_modseq;
	return 0;
}

static int parse_return(const struct imap_arg *list, struct imap_search_args *s, const char **error_r)
{
	s->esearch = true;
	for (unsigned int i = 0; i < list->count; i++) {
		const struct imap_arg *a = &list->list[i];
		if (imap_arg_atom_equals(a, "MIN"))
			s->returns |= IMAP_SEARCH_RETURN_MIN;
		else if (imap_arg_atom_equals(a, "MAX"))
			s->returns |= IMAP_SEARCH_RETURN_MAX;
		else if (imap_arg_atom_equals(a, "ALL"))
			s->returns |= IMAP_SEARCH_RETURN_ALL;
		else if (imap_arg_atom_equals(a, "COUNT"))
			s->returns |= IMAP_SEARCH_RETURN_COUNT;
		else if (imap_arg_atom_equals(a, "SAVE"))
			s->returns |= IMAP_SEARCH_RETURN_SAVE;
		else {
			*error_r = "Unknown RETURN option";
			return -1;
		}
	}
	/* RFC 4731 3.1: an empty list means ALL */
	if (s->returns == 0)
		s->returns = IMAP_SEARCH_RETURN_ALL;
	return 0;
}

int imap_search_parse(struct pool *pool, const struct imap_arg *args, unsigned int count,
		      struct imap_search_args *s, const char **error_r)
{
	unsigned int i = 0;
	memset(s, 0, sizeof(*s));
	if (i + 1 < count && imap_arg_atom_equals(&args[i], "RETURN")) {
		if (args[i + 1].type != IMAP_ARG_LIST) {
			*error_r = "RETURN needs a list";
			return -1;
		}
		if (parse_return(&args[i + 1], s, error_r) < 0)
			return -1;
		i += 2;
	}
	if (i + 1 < count && imap_arg_atom_equals(&args[i], "CHARSET")) {
		const char *cs = imap_arg_astring(&args[i + 1]);
		if (cs == NULL) {
			*error_r = "Invalid charset";
			return -1;
		}
		s->charset = cs;
		i += 2;
		if (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0) {
			*error_r = "[BADCHARSET (US-ASCII UTF-8)] Unsupported charset";
			return -2;
		}
	}
	if (i >= count) {
		*error_r = "Missing search keys";
		return -1;
	}
	return imap_search_parse_keys(pool, args + i, count - i, &s->key, &s->uses_modseq, error_r);
}
