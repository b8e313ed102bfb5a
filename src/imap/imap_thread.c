/* THREAD and UID THREAD (RFC 5256 section 4): ORDEREDSUBJECT, and
   REFERENCES linking each message to the last of its References (or its
   In-Reply-To) found among the results; messages without a known parent
   are roots.  Siblings and roots are ordered by date (sent date, ties by
   sequence number). */
#include "imap/imap_sort.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct node {
	struct imap_sort_keys k;
	int parent;                  /* index, -1 for roots */
	int first_child, next_sibling;
};

static struct node *cmp_nodes;

static int cmp_date(const void *pa, const void *pb)
{
	const struct node *a = &cmp_nodes[*(const int *)pa], *b = &cmp_nodes[*(const int *)pb];
	if (a->k.date != b->k.date)
		return a->k.date < b->k.date ? -1 : 1;
	return a->k.seq < b->k.seq ? -1 : a->k.seq > b->k.seq;
}

static void sort_ids(struct node *nodes, int *ids, size_t n)
{
	cmp_nodes = nodes;
	qsort(ids, n, sizeof(*ids), cmp_date);
}

/* "(a b (c)(d))": a chain while there is one child, a list of subthreads
   when several (RFC 5256 4 thread-list grammar). */
static void write_thread(struct buf *out, struct node *nodes, int i, bool uid, unsigned int depth)
{
	for (;;) {
		buf_printf(out, "%u", uid ? nodes[i].k.uid : nodes[i].k.seq);
		int kids[4096];
		size_t nk = 0;
		for (int c = nodes[i].first_child; c >= 0 && nk < N_ELEMENTS(kids); c = nodes[c].next_sibling)
			kids[nk++] = c;
		if (nk == 0)
			return;
		sort_ids(nodes, kids, nk);
		if (nk == 1 || depth > 200) {
			buf_append_char(out, ' ');
			i = kids[0];
			depth++;
			continue;
		}
		buf_append_char(out, ' ');
		for (size_t k = 0; k < nk; k++) {
			buf_append_char(out, '(');
			write_thread(out, nodes, kids[k], uid, depth + 1);
			buf_append_char(out, ')');
		}
		return;
	}
}

static void add_child(struct node *nodes, int parent, int child)
{
	nodes[child].parent = parent;
	nodes[child].next_sibling = nodes[parent].first_child;
	nodes[parent].first_child = child;
}

static bool is_ancestor(const struct node *nodes, int a, int of)
{
	for (int p = of; p >= 0; p = nodes[p].parent)
		if (p == a)
			return true;
	return false;
}

/* The last message id "<...>" in a References value that is one of ours. */
static int find_parent(struct node *nodes, uint32_t n, int self)
{
	const char *refs = nodes[self].k.references;
	int found = -1;
	while (refs != NULL && (refs = strchr(refs, '<')) != NULL) {
		const char *end = strchr(refs, '>');
		if (end == NULL)
			break;
		size_t len = (size_t)(end - refs) + 1;
		for (uint32_t i = 0; i < n; i++) {
			const char *mid = nodes[i].k.message_id;
			if ((int)i != self && mid != NULL && strlen(mid) == len && strncmp(mid, refs, len) == 0) {
				found = (int)i;
				break;
			}
		}
		refs = end + 1;
	}
	return found;
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
	struct node *nodes = xcalloc(n + 1, sizeof(*nodes));
	for (uint32_t i = 0; i < n; i++) {
		imap_sort_keys_load(s, seqs[i], &nodes[i].k);
		nodes[i].parent = nodes[i].first_child = nodes[i].next_sibling = -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		int p = -1;
		if (refs) {
			p = find_parent(nodes, n, (int)i);
		} else {
			/* ORDEREDSUBJECT: the first (by date) message of a subject is
			   the parent of the others */
			for (uint32_t j = 0; j < n; j++) {
				if (j != i && nodes[j].parent < 0 && strcmp(nodes[j].k.subject, nodes[i].k.subject) == 0 &&
				    (nodes[j].k.date < nodes[i].k.date ||
				     (nodes[j].k.date == nodes[i].k.date && nodes[j].k.seq < nodes[i].k.seq))) {
					p = (int)j;
					break;
				}
			}
		}
		if (p >= 0 && !is_ancestor(nodes, (int)i, p))
			add_child(nodes, p, (int)i);
	}
	int *roots = xmalloc((n + 1) * sizeof(*roots));
	size_t nr = 0;
	for (uint32_t i = 0; i < n; i++)
		if (nodes[i].parent < 0)
			roots[nr++] = (int)i;
	sort_ids(nodes, roots, nr);
	struct buf out = BUF_INIT;
	buf_append_str(&out, "* THREAD ");
	for (size_t i = 0; i < nr; i++) {
		buf_append_char(&out, '(');
		write_thread(&out, nodes, roots[i], c->uid, 0);
		buf_append_char(&out, ')');
	}
	buf_append_str(&out, "\r\n");
	imap_write_buf(s, &out);
	buf_free(&out);
	for (uint32_t i = 0; i < n; i++)
		imap_sort_keys_free(&nodes[i].k);
	free(nodes);
	free(roots);
	free(seqs);
	imap_tagged(s, "OK", "%sTHREAD completed", c->uid ? "UID " : "");
	return 0;
}
