/* HTML for the admin pages (admin_private.h): escaping, the page frame
   with its inline style, forms, and form decoding.  Everything that is
   not a literal of ours goes through html_escape(): addresses, headers,
   replies from other hosts, host names. */
#include "server/admin_private.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void html_escape_n(struct buf *out, const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text, *end = p + len;
	while (p < end) {
		switch (*p) {
		case '&':
			buf_append_str(out, "&amp;");
			break;
		case '<':
			buf_append_str(out, "&lt;");
			break;
		case '>':
			buf_append_str(out, "&gt;");
			break;
		case '"':
			buf_append_str(out, "&quot;");
			break;
		case '\'':
			buf_append_str(out, "&#39;");
			break;
		default:
			if (*p >= 0x80) {
				size_t n = utf8_seq_len(p, (size_t)(end - p));
				if (n > 0) {
					buf_append(out, p, n);
					p += n;
					continue;
				}
				buf_printf(out, "\\x%02X", *p);
			} else if (*p < 0x20 && *p != '\t' && *p != '\r' && *p != '\n') {
				buf_printf(out, "\\x%02X", *p);
			} else if (*p == 0x7f) {
				buf_append_str(out, "\\x7F");
			} else {
				buf_append_char(out, (char)*p);
			}
		}
		p++;
	}
}

void html_escape(struct buf *out, const char *text)
{
	if (text != NULL)
		html_escape_n(out, text, strlen(text));
}

static const char style[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}"
    "header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;align-items:center;gap:1.5em;"
    "flex-wrap:wrap}"
    "header h1{font-size:1.15em;margin:0}header a{color:#cfe0ff;text-decoration:none}"
    "header form{margin-left:auto}main{padding:1em;display:grid;"
    "grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:1em}"
    "section{background:#fff;border-radius:6px;padding:.8em 1em;box-shadow:0 1px 2px #0002;overflow:auto}"
    "section.wide{grid-column:1/-1}h2{font-size:1em;margin:.2em 0 .6em}"
    "table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.2em .5em;"
    "border-bottom:1px solid #e3e6eb;vertical-align:top}th{font-weight:600;color:#555}"
    "td.num,th.num{text-align:right}pre{white-space:pre-wrap;word-break:break-all;background:#f7f7f9;"
    "padding:.6em;font-size:12px}"
    "svg.chart{width:100%;height:auto;background:#fbfcfd}svg text{font-size:11px;fill:#555}"
    ".s0{fill:#3b7dd8}.s1{fill:#e39b2d}.line{fill:none;stroke:#3b7dd8;stroke-width:2}"
    ".pt{fill:#3b7dd8}.hb{fill:#4a9d6b}.axis{stroke:#999;stroke-width:1}"
    ".legend span{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 .8em}"
    ".lg-s0{background:#3b7dd8}.lg-s1{background:#e39b2d}"
    ".kv td:first-child{color:#555;width:12em}.error{color:#b00020}.note{color:#666;font-size:.9em}"
    "form.inline{display:inline}button{font:inherit;padding:.15em .7em;margin:.1em;cursor:pointer}"
    "button.danger{color:#b00020}.held{color:#b06000;font-weight:600}"
    "section.login{max-width:22em}section.login label{display:block;margin:.5em 0}"
    "section.login input{display:block;width:100%;padding:.3em;box-sizing:border-box}";

void html_begin(struct buf *out, const struct admin_request *r, const char *title, int refresh)
{
	buf_append_str(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
	if (refresh > 0)
		buf_printf(out, "<meta http-equiv=\"refresh\" content=\"%d\">", refresh);
	buf_append_str(out, "<title>");
	html_escape(out, title);
	buf_append_str(out, " - postoffice</title><style>");
	buf_append_str(out, style);
	buf_append_str(out, "</style></head><body><header><h1>postoffice ");
	html_escape(out, r->a->cfg->hostname);
	buf_append_str(out,
		       "</h1><nav><a href=\"/\">Status</a> &middot; <a href=\"/queue\">Queue</a> &middot; "
		       "<a href=\"/metrics\">Metrics</a></nav>");
	if (admin_logged_in(r)) {
		buf_append_str(out, "<form method=\"post\" action=\"/logout\" class=\"inline\">"
				    "<input type=\"hidden\" name=\"csrf\" value=\"");
		html_escape(out, r->session->csrf);
		buf_append_str(out, "\">");
		html_escape(out, r->session->user);
		buf_append_str(out, " <button type=\"submit\" id=\"logout\">Log out</button></form>");
	} else {
		buf_append_str(out, "<form class=\"inline\"><a href=\"/login\">Log in</a></form>");
	}
	buf_append_str(out, "</header><main>");
}

void html_end(struct buf *out)
{
	buf_append_str(out, "</main></body></html>\n");
}

void html_button_form(struct buf *out, const struct admin_request *r, const char *action, const char *label,
		      const char *cls)
{
	buf_append_str(out, "<form method=\"post\" class=\"inline\" action=\"");
	html_escape(out, action);
	buf_append_str(out, "\"><input type=\"hidden\" name=\"csrf\" value=\"");
	html_escape(out, r->session != NULL ? r->session->csrf : "");
	buf_append_str(out, "\"><button type=\"submit\"");
	if (cls != NULL) {
		buf_append_str(out, " class=\"");
		html_escape(out, cls);
		buf_append_str(out, "\"");
	}
	buf_append_str(out, ">");
	html_escape(out, label);
	buf_append_str(out, "</button></form>");
}

void html_duration(struct buf *out, int64_t s)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		buf_printf(out, "%llds", (long long)s);
	else if (s < 3600)
		buf_printf(out, "%lldm %llds", (long long)(s / 60), (long long)(s % 60));
	else if (s < 86400)
		buf_printf(out, "%lldh %lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else
		buf_printf(out, "%lldd %lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

void html_size(struct buf *out, uint64_t bytes)
{
	if (bytes < 1024)
		buf_printf(out, "%llu B", (unsigned long long)bytes);
	else if (bytes < 1024 * 1024)
		buf_printf(out, "%.1f kB", (double)bytes / 1024);
	else if (bytes < 1024ULL * 1024 * 1024)
		buf_printf(out, "%.1f MB", (double)bytes / (1024 * 1024));
	else
		buf_printf(out, "%.1f GB", (double)bytes / (1024.0 * 1024 * 1024));
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* application/x-www-form-urlencoded (the HTML form encoding): '+' is a
   space, %XX a byte. */
static char *form_decode(const char *p, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '+') {
			out[n++] = ' ';
		} else if (p[i] == '%' && i + 2 < len && hex_value(p[i + 1]) >= 0 &&
			   hex_value(p[i + 2]) >= 0) {
			out[n++] = (char)(hex_value(p[i + 1]) * 16 + hex_value(p[i + 2]));
			i += 2;
		} else {
			out[n++] = p[i];
		}
	}
	out[n] = '\0';
	return out;
}

char *form_field(const char *body, size_t len, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = body, *end = body + len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp != NULL ? amp : end;
		if ((size_t)(stop - p) > nlen && !memcmp(p, name, nlen) && p[nlen] == '=')
			return form_decode(p + nlen + 1, (size_t)(stop - p - nlen - 1));
		p = stop + 1;
	}
	return NULL;
}
