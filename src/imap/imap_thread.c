/* THREAD and UID THREAD (RFC 5256 section 4).

   REFERENCES follows the algorithm of section 4 step by step: a table of
   message IDs with one container per ID (dummies for IDs referenced but
   not present), parent/child links from each References (or In-Reply-To)
   chain without loops, the message linked under its last reference,
   dummies pruned, the roots sorted by sent date, roots of the same base
   subject gathered, and every set of siblings sorted by sent date (a
   dummy sorts by its first child).  ORDEREDSUBJECT groups by base subject:
   the first message (by sent date) of each subject is the parent of the
   others. */
#include "imap/imap_sort.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NONE UINT32_MAX

struct node {
	const struct imap_sort_keys *k; /* NULL: dummy */
	uint32_t parent, first_child, next_sibling;
	bool removed; /* dropped from the root set */
};

struct threader {
	const struct imap_sort_keys *keys;
	struct node *nodes;
	uint32_t count, alloc;
	/* message-id table: open addressing over node indexes */
	uint32_t *slots;
	const char **slot_ids;
	size_t nslots;
	struct pool *pool;
};

/* ---- message IDs ---- */

/* The next "<...>" message ID in *p (whitespace inside removed), into the
   pool; NULL when there is none. */
static const char *next_msgid(struct pool *pool, const char **p)
{
	while (*p != NULL && **p != '\0') {
		const char *lt = strchr(*p, '<');
		if (lt == NULL)
			break;
		const char *gt = strchr(lt + 1, '>');
		const char *lt2 = strchr(lt + 1, '<');
		if (gt == NULL)
			break;
		if (lt2 != NULL && lt2 < gt) {
			*p = lt2; /* "<<id>" or an unclosed "<": start again */
			continue;
		}
		*p = gt + 1;
		char *id = pool_alloc(pool, (size_t)(gt - lt) + 2);
		size_t n = 0;
		for (const char *c = lt; c <= gt; c++)
			if (*c != ' ' && *c != '\t' && *c != '\r' && *c != '\n')
				id[n++] = *c;
		id[n] = '\0';
		if (n > 2)
			return id;
	}
	if (p != NULL)
		*p = NULL;
	return NULL;
}

static size_t hash_id(const char *s)
{
	size_t h = 5381;
	for (; *s; s++)
		h = h * 33 + (unsigned char)*s;
	return h;
}

static uint32_t node_new(struct threader *t, const struct imap_sort_keys *k)
{
	if (t->count == t->alloc) {
		t->alloc = t->alloc ? t->alloc * 2 : 64;
		t->nodes = xreallocarray(t->nodes, t->alloc, sizeof(*t->nodes));
	}
	struct node *n = &t->nodes[t->count];
	n->k = k;
	n->parent = n->first_child = n->next_sibling = NONE;
	n->removed = false;
	return t->count++;
}

/* The slot of id in the table (empty or holding it). */
static size_t id_slot(struct threader *t, const char *id)
{
	size_t i = hash_id(id) & (t->nslots - 1);
	while (t->slot_ids[i] != NULL && strcmp(t->slot_ids[i], id) != 0)
		i = (i + 1) & (t->nslots - 1);
	return i;
}

/* The container of id, created (as a dummy) when absent. */
static uint32_t id_container(struct threader *t, const char *id)
{
	size_t i = id_slot(t, id);
	if (t->slot_ids[i] == NULL) {
		t->slot_ids[i] = id;
		t->slots[i] = node_new(t, NULL);
	}
	return t->slots[i];
}

/* ---- links ---- */

static bool is_ancestor(const struct threader *t, uint32_t a, uint32_t of)
{
	for (uint32_t p = of; p != NONE; p = t->nodes[p].parent)
		if (p == a)
			return true;
	return false;
}

static void unlink_child(struct threader *t, uint32_t child)
{
	uint32_t parent = t->nodes[child].parent;
	if (parent == NONE)
		return;
	for (uint32_t *p = &t->nodes[parent].first_child; *p != NONE; p = &t->nodes[*p].next_sibling) {
		if (*p == child) {
			*p = t->nodes[child].next_sibling;
			break;
		}
	}
	t->nodes[child].parent = NONE;
	t->nodes[child].next_sibling = NONE;
}

/* Appends child to parent's children (order is fixed by sorting later). */
static void link_child(struct threader *t, uint32_t parent, uint32_t child)
{
	uint32_t *p = &t->nodes[parent].first_child;
	while (*p != NONE)
		p = &t->nodes[*p].next_sibling;
	*p = child;
	t->nodes[child].parent = parent;
	t->nodes[child].next_sibling = NONE;
}

/* Step 1: containers and links for every message. */
static void build_links(struct threader *t, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct imap_sort_keys *k = &t->keys[i];
		/* (A) its own container; a missing or duplicate ID gets a
		   unique container of its own */
		const char *mp = k->message_id;
		const char *id = next_msgid(t->pool, &mp);
		uint32_t self;
		if (id != NULL) {
			size_t slot = id_slot(t, id);
			if (t->slot_ids[slot] == NULL) {
				t->slot_ids[slot] = id;
				t->slots[slot] = self = node_new(t, k);
			} else if (t->nodes[t->slots[slot]].k == NULL) {
				self = t->slots[slot];
				t->nodes[self].k = k;
			} else {
				self = node_new(t, k);
			}
		} else {
			self = node_new(t, k);
		}
		/* (B) the chain of references, parent before child; In-Reply-To
		   only when References holds no valid ID */
		const char *rp = k->references;
		if (next_msgid(t->pool, &(const char *){rp}) == NULL) {
			rp = k->in_reply_to;
			const char *first = next_msgid(t->pool, &rp);
			rp = first; /* its first ID only */
		}
		uint32_t prev = NONE;
		const char *ref;
		while ((ref = next_msgid(t->pool, &rp)) != NULL) {
			uint32_t c = id_container(t, ref);
			if (prev != NONE && c != prev && t->nodes[c].parent == NONE &&
			    !is_ancestor(t, c, prev))
				link_child(t, prev, c);
			prev = c;
		}
		/* (C) under the last reference, replacing any earlier parent;
		   no references: no parent */
		if (prev == self || (prev != NONE && is_ancestor(t, self, prev)))
			prev = NONE;
		if (t->nodes[self].parent != prev) {
			unlink_child(t, self);
			if (prev != NONE)
				link_child(t, prev, self);
		}
	}
}

/* ---- ordering ---- */

static const struct imap_sort_keys *sort_key_of(const struct threader *t, uint32_t i)
{
	/* a dummy sorts as its first child (children are sorted first) */
	while (t->nodes[i].k == NULL && t->nodes[i].first_child != NONE)
		i = t->nodes[i].first_child;
	return t->nodes[i].k;
}

static const struct threader *cmp_threader;

static int cmp_nodes(const void *pa, const void *pb)
{
	const struct imap_sort_keys *a = sort_key_of(cmp_threader, *(const uint32_t *)pa);
	const struct imap_sort_keys *b = sort_key_of(cmp_threader, *(const uint32_t *)pb);
	if (a == NULL || b == NULL)
		return (a == NULL) - (b == NULL);
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void sort_ids(const struct threader *t, uint32_t *ids, size_t n)
{
	cmp_threader = t;
	qsort(ids, n, sizeof(*ids), cmp_nodes);
}

/* Sorts the children of node (recursively, deepest first). */
static void sort_children(struct threader *t, uint32_t node)
{
	size_t n = 0;
	for (uint32_t c = t->nodes[node].first_child; c != NONE; c = t->nodes[c].next_sibling) {
		sort_children(t, c);
		n++;
	}
	if (n < 2)
		return;
	uint32_t *ids = xmalloc(n * sizeof(*ids));
	n = 0;
	for (uint32_t c = t->nodes[node].first_child; c != NONE; c = t->nodes[c].next_sibling)
		ids[n++] = c;
	sort_ids(t, ids, n);
	t->nodes[node].first_child = ids[0];
	for (size_t i = 0; i < n; i++)
		t->nodes[ids[i]].next_sibling = i + 1 < n ? ids[i + 1] : NONE;
	free(ids);
}

/* ---- step 4: pruning dummies ---- */

/* Prunes the list starting at first (children of parent, or the root set
   when parent is NONE) and returns its new head. */
static uint32_t prune_list(struct threader *t, uint32_t first, uint32_t parent)
{
	uint32_t head = NONE, *tail = &head;
	for (uint32_t c = first, next; c != NONE; c = next) {
		next = t->nodes[c].next_sibling;
		t->nodes[c].first_child = prune_list(t, t->nodes[c].first_child, c);
		if (t->nodes[c].k == NULL) {
			uint32_t kids = t->nodes[c].first_child;
			bool one = kids != NONE && t->nodes[kids].next_sibling == NONE;
			if (kids == NONE)
				continue; /* (A) a dummy without children goes */
			if (parent != NONE || one) {
				/* (B) its children take its place (at the root only
				   when there is one) */
				*tail = kids;
				for (uint32_t k = kids; k != NONE; k = t->nodes[k].next_sibling) {
					t->nodes[k].parent = parent;
					tail = &t->nodes[k].next_sibling;
				}
				continue;
			}
		}
		t->nodes[c].parent = parent;
		t->nodes[c].next_sibling = NONE;
		*tail = c;
		tail = &t->nodes[c].next_sibling;
	}
	*tail = NONE;
	return head;
}

/* ---- step 6: gathering roots by base subject ---- */

static const char *thread_subject(const struct threader *t, uint32_t i, bool *reply_r)
{
	const struct imap_sort_keys *k = sort_key_of(t, i);
	*reply_r = k != NULL && k->subject_reply;
	return k != NULL ? k->subject : "";
}

static void gather_subjects(struct threader *t, uint32_t *roots, size_t nroots)
{
	/* (A) a table of base subjects: index into roots */
	size_t nslots = 16;
	while (nslots < nroots * 2)
		nslots *= 2;
	size_t *table = xmalloc(nslots * sizeof(*table));
	for (size_t i = 0; i < nslots; i++)
		table[i] = SIZE_MAX;
	/* (B) one root per subject: a dummy over a message, a message that
	   is no reply over a reply */
	for (size_t r = 0; r < nroots; r++) {
		bool reply;
		const char *subj = thread_subject(t, roots[r], &reply);
		if (*subj == '\0')
			continue;
		size_t h = 5381;
		for (const char *c = subj; *c; c++)
			h = h * 33 + (unsigned char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
		size_t i = h & (nslots - 1);
		bool other_reply;
		while (table[i] != SIZE_MAX &&
		       strcasecmp(thread_subject(t, roots[table[i]], &other_reply), subj) != 0)
			i = (i + 1) & (nslots - 1);
		if (table[i] == SIZE_MAX) {
			table[i] = r;
			continue;
		}
		uint32_t cur = roots[r], old = roots[table[i]];
		thread_subject(t, old, &other_reply);
		if ((t->nodes[cur].k == NULL && t->nodes[old].k != NULL) ||
		    (other_reply && !reply && t->nodes[old].k != NULL))
			table[i] = r;
	}
	/* (C) merge each root into the one of its subject */
	for (size_t r = 0; r < nroots; r++) {
		bool reply, other_reply;
		const char *subj = thread_subject(t, roots[r], &reply);
		if (*subj == '\0')
			continue;
		size_t h = 5381;
		for (const char *c = subj; *c; c++)
			h = h * 33 + (unsigned char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
		size_t i = h & (nslots - 1);
		while (table[i] != SIZE_MAX &&
		       strcasecmp(thread_subject(t, roots[table[i]], &other_reply), subj) != 0)
			i = (i + 1) & (nslots - 1);
		if (table[i] == SIZE_MAX || table[i] == r)
			continue;
		size_t ti = table[i];
		uint32_t cur = roots[r], old = roots[ti];
		thread_subject(t, old, &other_reply);
		bool cur_dummy = t->nodes[cur].k == NULL, old_dummy = t->nodes[old].k == NULL;
		if (cur_dummy && old_dummy) {
			/* both dummies: the children become siblings */
			uint32_t c;
			while ((c = t->nodes[cur].first_child) != NONE) {
				unlink_child(t, c);
				link_child(t, old, c);
			}
		} else if (old_dummy || (reply && !other_reply)) {
			link_child(t, old, cur);
		} else {
			/* neither: a new dummy holds both, in the table's place */
			uint32_t d = node_new(t, NULL);
			link_child(t, d, old);
			link_child(t, d, cur);
			roots[ti] = d;
		}
		t->nodes[cur].removed = true;
	}
	free(table);
}

/* ---- output ---- */

/* Children of i, with dummies (which only remain at the root) replaced by
   their own children. */
static size_t collect_kids(const struct threader *t, uint32_t i, uint32_t **kids, size_t *alloc)
{
	size_t n = 0;
	for (uint32_t c = t->nodes[i].first_child; c != NONE; c = t->nodes[c].next_sibling) {
		if (n == *alloc) {
			*alloc = *alloc ? *alloc * 2 : 16;
			*kids = xreallocarray(*kids, *alloc, sizeof(**kids));
		}
		(*kids)[n++] = c;
	}
	return n;
}

static void write_thread(struct buf *out, const struct threader *t, uint32_t i, bool uid)
{
	uint32_t *kids = NULL;
	size_t alloc = 0;
	for (;;) {
		const struct node *nd = &t->nodes[i];
		size_t n = collect_kids(t, i, &kids, &alloc);
		if (nd->k == NULL) {
			/* a dummy: its children as nested threads "(a)(b)" */
			for (size_t k = 0; k < n; k++) {
				buf_append_char(out, '(');
				write_thread(out, t, kids[k], uid);
				buf_append_char(out, ')');
			}
			break;
		}
		buf_printf(out, "%u", uid ? nd->k->uid : nd->k->seq);
		if (n == 0)
			break;
		buf_append_char(out, ' ');
		if (n == 1 && t->nodes[kids[0]].k != NULL) {
			i = kids[0]; /* a chain "1 2 3": no recursion */
			continue;
		}
		for (size_t k = 0; k < n; k++) {
			buf_append_char(out, '(');
			write_thread(out, t, kids[k], uid);
			buf_append_char(out, ')');
		}
		break;
	}
	free(kids);
}

static void threader_free(struct threader *t)
{
	free(t->nodes);
	free(t->slots);
	free(t->slot_ids);
	pool_destroy(&t->pool);
}

void imap_thread_references(const struct imap_sort_keys *keys, uint32_t n, bool uid, struct buf *out)
{
	struct threader t = {.keys = keys, .pool = pool_create(4096)};
	t.nslots = 64;
	while (t.nslots < (size_t)n * 4)
		t.nslots *= 2;
	t.slots = xcalloc(t.nslots, sizeof(*t.slots));
	t.slot_ids = xcalloc(t.nslots, sizeof(*t.slot_ids));
	build_links(&t, n);
	/* (2) the root set, (4) pruned */
	uint32_t head = NONE, *tail = &head;
	for (uint32_t i = 0; i < t.count; i++) {
		if (t.nodes[i].parent == NONE) {
			*tail = i;
			tail = &t.nodes[i].next_sibling;
		}
	}
	*tail = NONE;
	head = prune_list(&t, head, NONE);
	/* (5) roots by sent date (dummies by their first child) */
	size_t nroots = 0;
	for (uint32_t c = head; c != NONE; c = t.nodes[c].next_sibling) {
		sort_children(&t, c);
		nroots++;
	}
	uint32_t *roots = xmalloc((nroots + 1) * sizeof(*roots));
	nroots = 0;
	for (uint32_t c = head; c != NONE; c = t.nodes[c].next_sibling)
		roots[nroots++] = c;
	sort_ids(&t, roots, nroots);
	/* (6) gather by subject, (7) sort again at every level */
	gather_subjects(&t, roots, nroots);
	size_t k = 0;
	for (size_t i = 0; i < nroots; i++) {
		if (t.nodes[roots[i]].removed)
			continue;
		sort_children(&t, roots[i]);
		roots[k++] = roots[i];
	}
	sort_ids(&t, roots, k);
	for (size_t i = 0; i < k; i++) {
		buf_append_char(out, '(');
		write_thread(out, &t, roots[i], uid);
		buf_append_char(out, ')');
	}
	free(roots);
	threader_free(&t);
}

/* ---- ORDEREDSUBJECT ---- */

static int cmp_subject_date(const void *pa, const void *pb)
{
	const struct imap_sort_keys *a = *(const struct imap_sort_keys *const *)pa;
	const struct imap_sort_keys *b = *(const struct imap_sort_keys *const *)pb;
	int r = strcasecmp(a->subject, b->subject);
	if (r != 0)
		return r;
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void imap_thread_orderedsubject(const struct imap_sort_keys *keys, uint32_t n, bool uid, struct buf *out)
{
	/* sorted by base subject and sent date; each subject is one thread
	   whose first message is the parent of the others; threads ordered
	   by the sent date of their first message */
	struct threader t = {.keys = keys};
	const struct imap_sort_keys **order = xmalloc((n + 1) * sizeof(*order));
	for (uint32_t i = 0; i < n; i++)
		order[i] = &keys[i];
	qsort(order, n, sizeof(*order), cmp_subject_date);
	uint32_t *roots = xmalloc((n + 1) * sizeof(*roots));
	size_t nroots = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t node = node_new(&t, order[i]);
		if (i > 0 && strcasecmp(order[i]->subject, order[i - 1]->subject) == 0)
			link_child(&t, roots[nroots - 1], node);
		else
			roots[nroots++] = node;
	}
	sort_ids(&t, roots, nroots);
	for (size_t i = 0; i < nroots; i++) {
		buf_append_char(out, '(');
		write_thread(out, &t, roots[i], uid);
		buf_append_char(out, ')');
	}
	free(roots);
	free(order);
	free(t.nodes);
}

int imap_cmd_thread(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	if (c->count < 3 || c->args[0].type != IMAP_ARG_ATOM) {
		*error_r = "THREAD needs an algorithm, a charset and search keys";
		return -1;
	}
	bool refs = strcasecmp(c->args[0].str, "REFERENCES") == 0;
	if (!refs && strcasecmp(c->args[0].str, "ORDEREDSUBJECT") != 0) {
		*error_r = "Unknown threading algorithm";
		return -1;
	}
	uint32_t *seqs, n;
	int r = imap_sort_search(c, c->args + 1, c->count - 1, &seqs, &n, error_r);
	if (r != 0)
		return r < 0 ? -1 : 0;
	struct imap_sort_keys *keys = imap_sort_keys_load_all(s, seqs, n);
	struct buf out = BUF_INIT;
	buf_append_str(&out, "* THREAD ");
	if (refs)
		imap_thread_references(keys, n, c->uid, &out);
	else
		imap_thread_orderedsubject(keys, n, c->uid, &out);
	buf_append_str(&out, "\r\n");
	imap_write_buf(s, &out);
	buf_free(&out);
	for (uint32_t i = 0; i < n; i++)
		imap_sort_keys_free(&keys[i]);
	free(keys);
	free(seqs);
	imap_tagged(s, "OK", "%sTHREAD completed", c->uid ? "UID " : "");
	return 0;
}
