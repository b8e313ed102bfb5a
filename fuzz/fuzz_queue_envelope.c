/* Fuzzes the queue envelope reader (queue_entry_parse in
   src/queue/queue.c: the text of DATA_DIR/queue/ID.env).  Checks that
   - an accepted envelope has an id valid for the spool, a sender and
     recipients with an address, and names the writer knows;
   - it serializes to text that parses back to an entry that serializes to
     the same bytes (a rewrite after a state change loses nothing);
   - a rejected one comes with an error. */
#include "queue/spool.h"
#include "lib/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_entry(const struct queue_entry *e)
{
	if (e->id == NULL || !queue_id_valid(e->id) || e->sender == NULL)
		abort();
	if ((unsigned)e->ret > SMTP_RET_HDRS || (unsigned)e->body > SMTP_BODY_BINARYMIME)
		abort();
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct queue_entry_rcpt *r = &e->rcpts[i];
		if (r->address == NULL || (unsigned)r->state > QUEUE_RCPT_BOUNCED || r->attempts < 0 ||
		    r->notify > 15)
			abort();
		queue_rcpt_state_name(r->state);
		queue_notify_string(r->notify);
	}
	queue_ret_name(e->ret);
	queue_body_name(e->body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_entry e;
	char *error = NULL;
	if (queue_entry_parse(&e, (const char *)data, size, &error) < 0) {
		if (error == NULL)
			abort();
		free(error);
		return 0;
	}
	check_entry(&e);
	struct buf text = BUF_INIT, again = BUF_INIT;
	queue_entry_serialize(&e, &text);
	struct queue_entry back;
	if (queue_entry_parse(&back, text.data, text.len, &error) < 0)
		abort();
	check_entry(&back);
	if (back.nrcpts != e.nrcpts || back.created != e.created || back.offset != e.offset ||
	    strcmp(back.id, e.id) != 0 || strcmp(back.sender, e.sender) != 0)
		abort();
	queue_entry_serialize(&back, &again);
	if (again.len != text.len || memcmp(again.data, text.data, text.len) != 0)
		abort();
	buf_free(&text);
	buf_free(&again);
	queue_entry_free(&back);
	queue_entry_free(&e);
	return 0;
}
