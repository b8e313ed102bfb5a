/* SVG charts drawn by the server (admin_private.h): bars, a line, and
   horizontal bars.  Plain SVG inside the page: no script, no external
   file, readable without JavaScript; each mark has a <title> (a tooltip)
   and its number in data-value. */
#include "server/admin_private.h"

#include <stdio.h>

#define W 640 /* a half-width chart; a wide one says its width */
#define H 200
#define LEFT 44
#define RIGHT 8
#define TOP 14
#define BOTTOM 22
#define PLOT_H (H - TOP - BOTTOM)

/* The scale's top: 1, 2 or 5 times a power of ten, at least max. */
static double nice_max(double max)
{
	double p = 1;
	while (p * 10 <= max && p < 1e18)
		p *= 10;
	for (int i = 0; i < 3; i++) {
		double step = (i == 0 ? 1 : i == 1 ? 2 : 5) * p;
		if (step >= max)
			return step;
	}
	return 10 * p;
}

static void chart_begin(struct buf *out, const char *id, const char *title, int width, int height)
{
	buf_append_str(out, "<svg class=\"chart\" id=\"");
	html_escape(out, id);
	buf_printf(out, "\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", width, height);
	html_escape(out, title);
	buf_append_str(out, "\" xmlns=\"http://www.w3.org/2000/svg\"><title>");
	html_escape(out, title);
	buf_append_str(out, "</title>");
}

/* Axes, the scale's top and zero, and the labels at both ends. */
static void chart_axes(struct buf *out, int width, double top, const char *left, const char *right)
{
	buf_printf(out,
		   "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>"
		   "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>",
		   LEFT, TOP, LEFT, TOP + PLOT_H, LEFT, TOP + PLOT_H, width - RIGHT, TOP + PLOT_H);
	buf_printf(out,
		   "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.10g</text>"
		   "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>",
		   LEFT - 4, TOP + 4, top, LEFT - 4, TOP + PLOT_H);
	buf_printf(out, "<text x=\"%d\" y=\"%d\">", LEFT, H - 6);
	html_escape(out, left);
	buf_printf(out, "</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">", width - RIGHT, H - 6);
	html_escape(out, right);
	buf_append_str(out, "</text>");
}

static void legend(struct buf *out, const struct svg_series *series, size_t nseries)
{
	buf_append_str(out, "<div class=\"legend\">");
	for (size_t k = 0; k < nseries; k++) {
		buf_append_str(out, "<span class=\"lg-");
		html_escape(out, series[k].cls);
		buf_append_str(out, "\"></span>");
		html_escape(out, series[k].name);
	}
	buf_append_str(out, "</div>");
}

static void mark_title(struct buf *out, const char *label, const char *name, double v)
{
	buf_append_str(out, "<title>");
	html_escape(out, label);
	buf_append_str(out, ": ");
	buf_printf(out, "%.10g ", v);
	html_escape(out, name);
	buf_append_str(out, "</title>");
}

void svg_bar_chart(struct buf *out, const char *id, const char *title, int width, size_t slots,
		   const char *left, const char *const *labels, const struct svg_series *series,
		   size_t nseries, size_t n)
{
	double max = 0;
	for (size_t k = 0; k < nseries; k++)
		for (size_t i = 0; i < n; i++)
			max = series[k].values[i] > max ? series[k].values[i] : max;
	double top = nice_max(max);
	if (slots < n)
		slots = n;
	chart_begin(out, id, title, width, H);
	chart_axes(out, width, top, slots > n || n == 0 ? left : labels[0], n > 0 ? labels[n - 1] : "");
	double slot = slots > 0 ? (double)(width - LEFT - RIGHT) / (double)slots : 0;
	double bar = slot * 0.8 / (double)(nseries > 0 ? nseries : 1);
	/* The newest slot is on the right. */
	double x0 = LEFT + slot * (double)(slots - n);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < nseries; k++) {
			double v = series[k].values[i];
			double h = v / top * PLOT_H;
			buf_printf(out,
				   "<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
				   "data-value=\"%.10g\">",
				   series[k].cls, x0 + slot * (double)i + slot * 0.1 + bar * (double)k,
				   TOP + PLOT_H - h, bar, h, v);
			mark_title(out, labels[i], series[k].name, v);
			buf_append_str(out, "</rect>");
		}
	buf_append_str(out, "</svg>");
	legend(out, series, nseries);
}

void svg_line_chart(struct buf *out, const char *id, const char *title, const char *const *labels,
		    const struct svg_series *series, size_t n)
{
	double max = 0;
	for (size_t i = 0; i < n; i++)
		max = series->values[i] > max ? series->values[i] : max;
	double top = nice_max(max);
	chart_begin(out, id, title, W, H);
	chart_axes(out, W, top, n > 0 ? labels[0] : "", n > 0 ? labels[n - 1] : "");
	double step = n > 1 ? (double)(W - LEFT - RIGHT) / (double)(n - 1) : 0;
	buf_append_str(out, "<polyline class=\"line\" points=\"");
	for (size_t i = 0; i < n; i++)
		buf_printf(out, "%s%.1f,%.1f", i ? " " : "", LEFT + step * (double)i,
			   TOP + PLOT_H - series->values[i] / top * PLOT_H);
	buf_append_str(out, "\"/>");
	for (size_t i = 0; i < n; i++) {
		double v = series->values[i];
		buf_printf(out, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" data-value=\"%.10g\">",
			   LEFT + step * (double)i, TOP + PLOT_H - v / top * PLOT_H, v);
		mark_title(out, labels[i], series->name, v);
		buf_append_str(out, "</circle>");
	}
	buf_append_str(out, "</svg>");
}

void svg_hbars(struct buf *out, const char *id, const char *title, const char *const *labels,
	       const double *values, size_t n, double max, const char *suffix)
{
	const int row = 24, label_w = 150, value_w = 80;
	int height = (int)n * row + 8;
	if (max <= 0)
		for (size_t i = 0; i < n; i++)
			max = values[i] > max ? values[i] : max;
	if (max <= 0)
		max = 1;
	chart_begin(out, id, title, W, height);
	for (size_t i = 0; i < n; i++) {
		int y = 4 + (int)i * row;
		double w = values[i] / max * (W - label_w - value_w);
		buf_printf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", label_w - 6, y + 15);
		html_escape(out, labels[i]);
		buf_printf(out,
			   "</text><rect class=\"hb\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
			   "data-value=\"%.10g\">",
			   label_w, y + 2, w, row - 6, values[i]);
		mark_title(out, labels[i], suffix, values[i]);
		buf_printf(out, "</rect><text x=\"%.1f\" y=\"%d\">%.10g%s</text>", label_w + w + 6, y + 15,
			   values[i], suffix);
	}
	buf_append_str(out, "</svg>");
}
