/* THREAD and UID THREAD (RFC 5256 section 4).

   REFERENCES follows the algorithm of section 4 step by step: a table of
   message IDs with one container per ID (dummies for IDs referenced but
   not present), parent/child links from each References (or In-Reply-To)
   chain without loops, the message linked under its last reference,
   dummies pruned, the roots sorted by sent date, roots of the same base
   subject gathered, and every set of siblings sorted by sent date (a
   dummy sorts by its first child).  ORDEREDSUBJECT groups by base subject:
   the first message (by sent date) of each subject is the parent of the
   others.  The message IDs come parsed with the keys (imap_sortkey.h). */
#include "imap/imap_sort.h"
#include "lib/hash.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NONE UINT32_MAX

struct node {
	const struct imap_sort_msg *k; /* NULL: dummy */
	uint32_t parent;               /* step 1 (later steps do not read it) */
	uint32_t first_child, next_sibling;
	uint32_t last_child; /* set by step 4, for splicing */
	uint32_t nkids;      /* step 1: how many have it as parent */
	bool removed;        /* dropped from the root set */
};

struct threader {
	const struct imap_sort_msg *msgs;
	struct node *nodes;
	uint32_t count, alloc;
	/* message-id table: open addressing over node indexes, at most half
	   full; it grows with the IDs that References name (thousands in one
	   message) */
	uint32_t *slots;
	const char **slot_ids;
	uint64_t *slot_hash; /* the keys hash each ID once (imap_sortkey.h) */
	size_t nslots, nused;
};

/* ---- message IDs ---- */

static uint32_t node_new(struct threader *t, const struct imap_sort_msg *k)
{
	if (t->count == t->alloc) {
		t->alloc = t->alloc ? t->alloc * 2 : 64;
		t->nodes = xreallocarray(t->nodes, t->alloc, sizeof(*t->nodes));
	}
	struct node *n = &t->nodes[t->count];
	n->k = k;
	n->parent = n->first_child = n->next_sibling = n->last_child = NONE;
	n->nkids = 0;
	n->removed = false;
	return t->count++;
}

/* The slot of id (whose hash_str() is hash) in the table (empty or
   holding it). */
static size_t id_slot(const struct threader *t, const char *id, uint64_t hash)
{
	size_t mask = t->nslots - 1;
	size_t i = (size_t)hash & mask;
	while (t->slot_ids[i] != NULL && (t->slot_hash[i] != hash || strcmp(t->slot_ids[i], id) != 0))
		i = (i + 1) & mask;
	return i;
}

static void id_table_resize(struct threader *t, size_t nslots)
{
	const char **old_ids = t->slot_ids;
	uint32_t *old_slots = t->slots;
	uint64_t *old_hash = t->slot_hash;
	size_t old_n = t->nslots;
	t->nslots = nslots;
	t->slots = xcalloc(nslots, sizeof(*t->slots));
	t->slot_ids = xcalloc(nslots, sizeof(*t->slot_ids));
	t->slot_hash = xcalloc(nslots, sizeof(*t->slot_hash));
	for (size_t i = 0; i < old_n; i++) {
		if (old_ids[i] == NULL)
			continue;
		size_t j = id_slot(t, old_ids[i], old_hash[i]);
		t->slot_ids[j] = old_ids[i];
		t->slots[j] = old_slots[i];
		t->slot_hash[j] = old_hash[i];
	}
	free(old_ids);
	free(old_slots);
	free(old_hash);
}

/* Enters id (not in the table yet) for node, doubling the table first
   when it would become more than half full: linear probing needs empty
   slots, a full table would make id_slot() search forever. */
static void id_insert(struct threader *t, const char *id, uint64_t hash, uint32_t node)
{
	if ((t->nused + 1) * 2 > t->nslots)
		id_table_resize(t, t->nslots * 2);
	size_t i = id_slot(t, id, hash);
	t->slot_ids[i] = id;
	t->slot_hash[i] = hash;
	t->slots[i] = node;
	t->nused++;
}

/* The container of id, created (as a dummy) when absent. */
static uint32_t id_container(struct threader *t, const char *id, uint64_t hash)
{
	size_t i = id_slot(t, id, hash);
	if (t->slot_ids[i] != NULL)
		return t->slots[i];
	uint32_t node = node_new(t, NULL);
	id_insert(t, id, hash, node);
	return node;
}

/* ---- links ---- */

/* Step 1 works on parent links only, and the lists of children are made
   once it is done (children_from_parents): moving a message to another
   parent costs the same however many siblings it had. */
static void set_parent(struct threader *t, uint32_t child, uint32_t parent)
{
	uint32_t old = t->nodes[child].parent;
	if (old != NONE)
		t->nodes[old].nkids--;
	if (parent != NONE)
		t->nodes[parent].nkids++;
	t->nodes[child].parent = parent;
}

/* True when a is of or above it (step 1).  A node without children is
   above nothing but itself: the walk up from of, as long as the chain of
   references that built it, is needed only when a has children. */
static bool is_ancestor(const struct threader *t, uint32_t a, uint32_t of)
{
	if (t->nodes[a].nkids == 0)
		return a == of;
	for (uint32_t p = of; p != NONE; p = t->nodes[p].parent)
		if (p == a)
			return true;
	return false;
}

static void children_from_parents(struct threader *t)
{
	for (uint32_t i = t->count; i-- > 0;) {
		uint32_t p = t->nodes[i].parent;
		if (p != NONE) {
			t->nodes[i].next_sibling = t->nodes[p].first_child;
			t->nodes[p].first_child = i;
		}
	}
}

/* Adds child to parent's children (step 6).  The first child stays first:
   it is what a dummy sorts and gathers by (sort_key_of); the order of the
   others is fixed by sorting later. */
static void link_child(struct threader *t, uint32_t parent, uint32_t child)
{
	uint32_t first = t->nodes[parent].first_child;
	t->nodes[child].parent = parent;
	if (first == NONE) {
		t->nodes[child].next_sibling = NONE;
		t->nodes[parent].first_child = child;
	} else {
		t->nodes[child].next_sibling = t->nodes[first].next_sibling;
		t->nodes[first].next_sibling = child;
	}
}

/* Step 1: containers and links for every message. */
static void build_links(struct threader *t, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct imap_sort_msg *k = &t->msgs[i];
		/* (A) its own container; a missing or duplicate ID gets a
		   unique container of its own */
		const char *id = k->key->message_id;
		uint32_t self;
		if (id != NULL) {
			size_t slot = id_slot(t, id, k->key->id_hash);
			if (t->slot_ids[slot] == NULL) {
				self = node_new(t, k);
				id_insert(t, id, k->key->id_hash, self);
			} else if (t->nodes[t->slots[slot]].k == NULL) {
				self = t->slots[slot];
				t->nodes[self].k = k;
			} else {
				self = node_new(t, k);
			}
		} else {
			self = node_new(t, k);
		}
		/* (B) the chain of references, parent before child (the keys
		   hold References, else the first ID of In-Reply-To) */
		uint32_t prev = NONE;
		const char *ref = k->key->refs;
		for (uint32_t r = 0; r < k->key->nrefs; r++, ref += strlen(ref) + 1) {
			uint32_t c = id_container(t, ref, k->key->ref_hash[r]);
			if (prev != NONE && c != prev && t->nodes[c].parent == NONE &&
			    !is_ancestor(t, c, prev))
				set_parent(t, c, prev);
			prev = c;
		}
		/* (C) under the last reference, replacing any earlier parent;
		   no references: no parent */
		if (prev == self || (prev != NONE && is_ancestor(t, self, prev)))
			prev = NONE;
		if (t->nodes[self].parent != prev)
			set_parent(t, self, prev);
	}
	children_from_parents(t);
}

/* ---- ordering ---- */

static const struct imap_sort_msg *sort_key_of(const struct threader *t, uint32_t i)
{
	/* a dummy sorts as its first child (children are sorted first) */
	while (t->nodes[i].k == NULL && t->nodes[i].first_child != NONE)
		i = t->nodes[i].first_child;
	return t->nodes[i].k;
}

static const struct threader *cmp_threader;

static int cmp_nodes(const void *pa, const void *pb)
{
	const struct imap_sort_msg *a = sort_key_of(cmp_threader, *(const uint32_t *)pa);
	const struct imap_sort_msg *b = sort_key_of(cmp_threader, *(const uint32_t *)pb);
	if (a == NULL || b == NULL)
		return (a == NULL) - (b == NULL);
	if (a->key->date != b->key->date)
		return a->key->date < b->key->date ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void sort_ids(const struct threader *t, uint32_t *ids, size_t n)
{
	cmp_threader = t;
	qsort(ids, n, sizeof(*ids), cmp_nodes);
}

/* The nodes of the trees rooted at roots[0..n), every node before its
   children: walked backwards, the order lets the steps that work from the
   leaves up do so without recursion, whose depth the mail would set (each
   ID of a References field and each reply in a chain is a level). */
static uint32_t *preorder(const struct threader *t, const uint32_t *roots, size_t n, size_t *count_r)
{
	uint32_t *order = xmalloc(((size_t)t->count + 1) * sizeof(*order));
	uint32_t *stack = xmalloc(((size_t)t->count + 1) * sizeof(*stack));
	size_t count = 0, depth = 0;
	for (size_t i = 0; i < n; i++)
		stack[depth++] = roots[i];
	while (depth > 0) {
		uint32_t x = stack[--depth];
		order[count++] = x;
		for (uint32_t c = t->nodes[x].first_child; c != NONE; c = t->nodes[c].next_sibling)
			stack[depth++] = c;
	}
	free(stack);
	*count_r = count;
	return order;
}

/* Sorts the children of node. */
static void sort_kids(struct threader *t, uint32_t node)
{
	size_t n = 0;
	for (uint32_t c = t->nodes[node].first_child; c != NONE; c = t->nodes[c].next_sibling)
		n++;
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

/* Sorts the children at every level of the trees rooted at roots[0..n),
   deepest first (a dummy sorts by its first child). */
static void sort_trees(struct threader *t, const uint32_t *roots, size_t n)
{
	size_t count;
	uint32_t *order = preorder(t, roots, n, &count);
	for (size_t i = count; i-- > 0;)
		sort_kids(t, order[i]);
	free(order);
}

/* ---- step 4: pruning dummies ---- */

/* Prunes the list starting at first (children of a node, or the root set
   when at_root), whose members' own children are pruned already; returns
   its new head and its last node in *last_r. */
static uint32_t prune_list(struct threader *t, uint32_t first, bool at_root, uint32_t *last_r)
{
	uint32_t head = NONE, last = NONE;
	for (uint32_t c = first, next; c != NONE; c = next) {
		next = t->nodes[c].next_sibling;
		uint32_t from = c, to = c;
		if (t->nodes[c].k == NULL) {
			uint32_t kids = t->nodes[c].first_child;
			if (kids == NONE)
				continue; /* (A) a dummy without children goes */
			if (!at_root || t->nodes[kids].next_sibling == NONE) {
				/* (B) its children take its place (at the root only
				   when there is one) */
				from = kids;
				to = t->nodes[c].last_child;
			}
		}
		if (last == NONE)
			head = from;
		else
			t->nodes[last].next_sibling = from;
		last = to;
	}
	if (last != NONE)
		t->nodes[last].next_sibling = NONE;
	*last_r = last;
	return head;
}

/* Prunes the whole forest (roots[0..n), linked from head) from the leaves
   up and returns the new head of the root set. */
static uint32_t prune_forest(struct threader *t, uint32_t head, const uint32_t *roots, size_t n)
{
	size_t count;
	uint32_t *order = preorder(t, roots, n, &count);
	for (size_t i = count; i-- > 0;) {
		struct node *nd = &t->nodes[order[i]];
		nd->first_child = prune_list(t, nd->first_child, false, &nd->last_child);
	}
	free(order);
	uint32_t last;
	return prune_list(t, head, true, &last);
}

/* ---- step 6: gathering roots by base subject ---- */

/* The keys a root is gathered by: its own, a dummy's first child's. */
static const struct imap_sortkey *root_key(const struct threader *t, uint32_t i)
{
	const struct imap_sort_msg *k = sort_key_of(t, i);
	return k != NULL ? k->key : &imap_sortkey_empty;
}

/* The slot of key's base subject in the table of roots: empty, or holding
   a root of that subject (compared as strcasecmp() does). */
static size_t subject_slot(const struct threader *t, const size_t *table, size_t nslots,
			   const uint32_t *roots, const struct imap_sortkey *key)
{
	const char *subj = key->text[IMAP_SORTKEY_SUBJECT];
	size_t i = (size_t)key->subject_hash & (nslots - 1);
	while (table[i] != SIZE_MAX) {
		const struct imap_sortkey *other = root_key(t, roots[table[i]]);
		if (other->subject_hash == key->subject_hash &&
		    strcasecmp(other->text[IMAP_SORTKEY_SUBJECT], subj) == 0)
			break;
		i = (i + 1) & (nslots - 1);
	}
	return i;
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
		const struct imap_sortkey *key = root_key(t, roots[r]);
		if (key->text[IMAP_SORTKEY_SUBJECT][0] == '\0')
			continue;
		size_t i = subject_slot(t, table, nslots, roots, key);
		if (table[i] == SIZE_MAX) {
			table[i] = r;
			continue;
		}
		uint32_t cur = roots[r], old = roots[table[i]];
		bool other_reply = root_key(t, old)->subject_reply;
		if ((t->nodes[cur].k == NULL && t->nodes[old].k != NULL) ||
		    (other_reply && !key->subject_reply && t->nodes[old].k != NULL))
			table[i] = r;
	}
	/* (C) merge each root into the one of its subject */
	for (size_t r = 0; r < nroots; r++) {
		const struct imap_sortkey *key = root_key(t, roots[r]);
		if (key->text[IMAP_SORTKEY_SUBJECT][0] == '\0')
			continue;
		size_t i = subject_slot(t, table, nslots, roots, key);
		if (table[i] == SIZE_MAX || table[i] == r)
			continue;
		size_t ti = table[i];
		uint32_t cur = roots[r], old = roots[ti];
		bool other_reply = root_key(t, old)->subject_reply;
		bool cur_dummy = t->nodes[cur].k == NULL, old_dummy = t->nodes[old].k == NULL;
		if (cur_dummy && old_dummy) {
			/* both dummies: the children become siblings */
			for (uint32_t c = t->nodes[cur].first_child, next; c != NONE; c = next) {
				next = t->nodes[c].next_sibling;
				link_child(t, old, c);
			}
			t->nodes[cur].first_child = NONE;
		} else if (old_dummy || (key->subject_reply && !other_reply)) {
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

/* Writes i and its line of only children "1 2 3"; returns the first of
   the children that follow as nested threads "(4)(5 6)", or NONE.  A
   dummy writes nothing of its own: its children are nested threads. */
static uint32_t write_chain(struct buf *out, const struct threader *t, uint32_t i, bool uid)
{
	for (;;) {
		const struct node *nd = &t->nodes[i];
		if (nd->k == NULL)
			return nd->first_child;
		imap_sort_append_number(out, uid ? nd->k->uid : nd->k->seq);
		uint32_t c = nd->first_child;
		if (c == NONE)
			return NONE;
		buf_append_char(out, ' ');
		if (t->nodes[c].next_sibling != NONE || t->nodes[c].k == NULL)
			return c;
		i = c;
	}
}

/* Writes the thread under root.  Without recursion (threads can be as
   deep as there are messages): the stack holds, for each list of nested
   threads being written, the next one of it to write. */
static void write_thread(struct buf *out, const struct threader *t, uint32_t root, bool uid)
{
	uint32_t *stack = NULL;
	size_t depth = 0, alloc = 0;
	uint32_t first = write_chain(out, t, root, uid);
	for (;;) {
		if (first != NONE) {
			if (depth == alloc) {
				alloc = alloc ? alloc * 2 : 16;
				stack = xreallocarray(stack, alloc, sizeof(*stack));
			}
			stack[depth++] = first;
			first = NONE;
		}
		if (depth == 0)
			break;
		uint32_t c = stack[depth - 1];
		if (c == NONE) {
			/* the list is done: so is the thread that held it */
			if (--depth > 0)
				buf_append_char(out, ')');
			continue;
		}
		stack[depth - 1] = t->nodes[c].next_sibling;
		buf_append_char(out, '(');
		first = write_chain(out, t, c, uid);
		if (first == NONE)
			buf_append_char(out, ')');
	}
	free(stack);
}

static void threader_free(struct threader *t)
{
	free(t->nodes);
	free(t->slots);
	free(t->slot_ids);
	free(t->slot_hash);
}

void imap_thread_references(const struct imap_sort_msg *msgs, uint32_t n, bool uid, struct buf *out)
{
	struct threader t = {.msgs = msgs};
	t.nslots = 64;
	while (t.nslots < (size_t)n * 2)
		t.nslots *= 2;
	t.slots = xcalloc(t.nslots, sizeof(*t.slots));
	t.slot_ids = xcalloc(t.nslots, sizeof(*t.slot_ids));
	t.slot_hash = xcalloc(t.nslots, sizeof(*t.slot_hash));
	build_links(&t, n);
	/* (2) the root set, (4) pruned */
	uint32_t *roots = xmalloc(((size_t)t.count + 1) * sizeof(*roots));
	size_t nroots = 0;
	uint32_t head = NONE, *tail = &head;
	for (uint32_t i = 0; i < t.count; i++) {
		if (t.nodes[i].parent == NONE) {
			roots[nroots++] = i;
			*tail = i;
			tail = &t.nodes[i].next_sibling;
		}
	}
	*tail = NONE;
	head = prune_forest(&t, head, roots, nroots);
	/* (5) roots by sent date (dummies by their first child) */
	nroots = 0;
	for (uint32_t c = head; c != NONE; c = t.nodes[c].next_sibling)
		roots[nroots++] = c;
	sort_trees(&t, roots, nroots);
	sort_ids(&t, roots, nroots);
	/* (6) gather by subject, (7) sort again at every level */
	gather_subjects(&t, roots, nroots);
	size_t k = 0;
	for (size_t i = 0; i < nroots; i++)
		if (!t.nodes[roots[i]].removed)
			roots[k++] = roots[i];
	sort_trees(&t, roots, k);
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
	const struct imap_sort_msg *a = *(const struct imap_sort_msg *const *)pa;
	const struct imap_sort_msg *b = *(const struct imap_sort_msg *const *)pb;
	int r = imap_casemap_cmp(a->key->text[IMAP_SORTKEY_SUBJECT], b->key->text[IMAP_SORTKEY_SUBJECT]);
	if (r != 0)
		return r;
	if (a->key->date != b->key->date)
		return a->key->date < b->key->date ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void imap_thread_orderedsubject(const struct imap_sort_msg *msgs, uint32_t n, bool uid, struct buf *out)
{
	/* sorted by base subject and sent date; each subject is one thread
	   whose first message is the parent of the others; threads ordered
	   by the sent date of their first message */
	struct threader t = {.msgs = msgs};
	const struct imap_sort_msg **order = xmalloc((n + 1) * sizeof(*order));
	for (uint32_t i = 0; i < n; i++)
		order[i] = &msgs[i];
	qsort(order, n, sizeof(*order), cmp_subject_date);
	uint32_t *roots = xmalloc((n + 1) * sizeof(*roots));
	size_t nroots = 0;
	uint32_t last = NONE; /* the last child of the current root */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t node = node_new(&t, order[i]);
		if (i == 0 || strcasecmp(order[i]->key->text[IMAP_SORTKEY_SUBJECT],
					 order[i - 1]->key->text[IMAP_SORTKEY_SUBJECT]) != 0) {
			roots[nroots++] = node;
			last = NONE;
			continue;
		}
		/* children in sorted order: appended */
		uint32_t root = roots[nroots - 1];
		if (last == NONE)
			t.nodes[root].first_child = node;
		else
			t.nodes[last].next_sibling = node;
		t.nodes[node].parent = root;
		last = node;
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
	struct imap_sort_msg *msgs = imap_sort_msgs_load(s, seqs, n);
	struct buf out = BUF_INIT;
	buf_append_str(&out, "* THREAD ");
	if (refs)
		imap_thread_references(msgs, n, c->uid, &out);
	else
		imap_thread_orderedsubject(msgs, n, c->uid, &out);
	buf_append_str(&out, "\r\n");
	imap_write_buf(s, &out);
	buf_free(&out);
	free(msgs);
	free(seqs);
	imap_tagged(s, "OK", "%sTHREAD completed", c->uid ? "UID " : "");
	return 0;
}
