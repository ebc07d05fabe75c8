// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The chart of a `make bench` run: build/bench.json (or the file named) drawn as an SVG, one
 * bar per row, so that a reader sees at a glance where libkevent is ahead of its baseline
 * and where it is behind. Not a benchmark: `make bench` runs it after bench/report.
 *
 * A bar starts at the baseline (the middle line) and goes right when libkevent is ahead,
 * left when it is behind, on a log scale of how many times better or worse it is (ratio,
 * or 1 / ratio when lower is better; beyond 8 times the bar stops at the edge with an
 * arrow). The ratio itself (libkevent / baseline, medians, as in the table) is written at
 * the bar's end, with the direction that is better, and the baseline's name under the bar.
 * A reference row (no baseline) is listed with its figure and no bar; so is a row whose
 * ratio is missing, with its note.
 *
 *   build/bench/chart [-o out.svg] [bench.json]     (default: bench.svg beside the input)
 */
#include "bench.h"

#define CH_WIDTH   1100
#define CH_LABEL_W 420 /* the scenario's name, right-aligned before the plot */
#define CH_PLOT_W  560
#define CH_MID	   (CH_LABEL_W + 20 + CH_PLOT_W / 2) /* x of the baseline */
#define CH_DOUBLINGS 3			      /* each side: 8 times */
#define CH_ROW_H   34
#define CH_TOP	   110
#define CH_BAR_H   13
#define CH_MAX_ROWS 4096
#define CH_UP	   "\xe2\x86\x91" /* higher is better */
#define CH_DOWN	   "\xe2\x86\x93" /* lower is better */
#define CH_LEFT	   "\xe2\x97\x80" /* off the scale */
#define CH_RIGHT   "\xe2\x96\xb6"
#define CH_TIMES   "\xc3\x97"

/* Text goes into SVG: escape what XML does not take as is. */
static void ch_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '&')
			fputs("&amp;", f);
		else if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else
			fputc(*s, f);
	}
}

/* How many times better libkevent is (below 1: worse; a ratio of 0 is off the scale), or NAN. */
static double ch_advantage(const struct bench_fig *g)
{
	if (g->reference || isnan(g->ratio) || g->ratio < 0)
		return NAN;
	return g->higher_is_better ? g->ratio : 1 / g->ratio;
}

/* x of an advantage on the log scale, clamped to the plot. */
static double ch_x(double adv)
{
	double d = log2(adv);

	if (d > CH_DOUBLINGS)
		d = CH_DOUBLINGS;
	if (d < -CH_DOUBLINGS)
		d = -CH_DOUBLINGS;
	return CH_MID + d * (CH_PLOT_W / 2.0) / CH_DOUBLINGS;
}

static void ch_header(FILE *f, const char *src, unsigned int rows, unsigned int height)
{
	fprintf(f,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%u\" "
		"viewBox=\"0 0 %d %u\" font-family=\"DejaVu Sans, Verdana, sans-serif\" "
		"font-size=\"12\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
		CH_WIDTH, height, CH_WIDTH, height);
	fprintf(f, "<text x=\"20\" y=\"28\" font-size=\"17\" font-weight=\"bold\">libkevent "
		   "against its baseline, same run, same work (%u rows of ", rows);
	ch_text(f, src);
	fputs(")</text>\n", f);
	fputs("<text x=\"20\" y=\"50\" fill=\"#444\">Right of the middle line (green): "
	      "libkevent ahead; left (red): behind; log scale, times better or worse. "
	      "The number is the table's ratio</text>\n"
	      "<text x=\"20\" y=\"66\" fill=\"#444\">(libkevent / baseline, medians; "
	      CH_UP " higher is better, " CH_DOWN " lower is better); the baseline "
	      "is named under each bar. Reference rows have no baseline and no bar.</text>\n",
	      f);
}

/* The scale: a line per doubling, labelled at the top, and the baseline's line. */
static void ch_grid(FILE *f, unsigned int height)
{
	for (int d = -CH_DOUBLINGS; d <= CH_DOUBLINGS; d++) {
		double x = ch_x(exp2(d));

		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%u\" stroke=\"%s\" "
			"stroke-width=\"%d\"/>\n",
			x, CH_TOP - 12, x, height - 10, d ? "#ddd" : "#333", d ? 1 : 2);
		if (d)
			fprintf(f,
				"<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#666\">"
				"%d" CH_TIMES " %s</text>\n",
				x, CH_TOP - 18, 1 << abs(d), d > 0 ? "ahead" : "behind");
		else
			fprintf(f,
				"<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" "
				"font-weight=\"bold\">baseline</text>\n",
				x, CH_TOP - 18);
	}
}

/* A row without a bar: a reference figure, or a comparison that has no ratio. */
static void ch_no_bar(FILE *f, const struct bench_fig *g, double y)
{
	char v[16];

	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#777\" font-style=\"italic\">",
		CH_MID - CH_PLOT_W / 2.0, y + 11);
	if (g->reference)
		fprintf(f, "reference, no baseline: %s %s", bench_num(v, sizeof(v), g->kevent),
			g->unit);
	else
		fprintf(f, "no ratio: %s", g->note[0] ? "" : "no reason recorded");
	if (g->note[0]) {
		fputs(g->reference ? " (" : "", f);
		ch_text(f, g->note);
		fputs(g->reference ? ")" : "", f);
	}
	fputs("</text>\n", f);
}

static void ch_bar(FILE *f, const struct bench_fig *g, double adv, double y)
{
	double x = ch_x(adv), left = fmin(x, CH_MID), w = fabs(x - CH_MID);
	bool ahead = adv >= 1, clipped = fabs(log2(adv)) > CH_DOUBLINGS;
	/* Beyond a long bar's end there is no room for the ratio (the edge, or the names). */
	bool inside = fabs(log2(adv)) > CH_DOUBLINGS - 0.8;
	const char *better = g->higher_is_better ? CH_UP : CH_DOWN;

	fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n",
		left, y + 2, w < 1 ? 1 : w, CH_BAR_H, ahead ? "#2e9d48" : "#d0453a");
	/*
	 * The ratio beyond the bar's end, or inside a long bar, with an arrow when the bar is
	 * off the scale. The baseline's name under the bar.
	 */
	if (inside)
		fprintf(f,
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" fill=\"white\" "
			"font-weight=\"bold\">%s%.2f %s%s</text>\n",
			ahead ? x - 4 : x + 4, y + 13, ahead ? "end" : "start",
			clipped && !ahead ? CH_LEFT " " : "", g->ratio, better,
			clipped && ahead ? " " CH_RIGHT : "");
	else
		fprintf(f,
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-weight=\"bold\">"
			"%.2f %s</text>\n",
			ahead ? x + 5 : x - 5, y + 13, ahead ? "start" : "end", g->ratio, better);
	fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"10\" fill=\"#555\">",
		ahead ? CH_MID + 4 : CH_MID - 4, y + 27, ahead ? "start" : "end");
	ch_text(f, g->baseline_name);
	fputs("</text>\n", f);
}

static void ch_row(FILE *f, const struct bench_fig *g, unsigned int i)
{
	double y = CH_TOP + (double)i * CH_ROW_H, adv = ch_advantage(g);

	if (i % 2)
		fprintf(f,
			"<rect x=\"0\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"#f6f6f6\"/>\n",
			y - 4, CH_WIDTH, CH_ROW_H);
	fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", CH_LABEL_W, y + 13);
	ch_text(f, g->scenario);
	fprintf(f, " (%s)</text>\n", g->unit);
	if (isnan(adv))
		ch_no_bar(f, g, y);
	else
		ch_bar(f, g, adv, y);
}

static unsigned int ch_read(const char *path, struct bench_fig *rows, unsigned int max)
{
	char line[2048];
	unsigned int n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		bench_die("chart: cannot read %s: %s", path, strerror(errno));
	while (n < max && fgets(line, sizeof(line), f))
		n += bench_fig_read(line, &rows[n]);
	fclose(f);
	return n;
}

/* bench.svg beside the input. */
static void ch_default_out(const char *in, char *out, size_t len)
{
	const char *slash = strrchr(in, '/');

	snprintf(out, len, "%.*sbench.svg", slash ? (int)(slash - in + 1) : 0, in);
}

int main(int argc, char **argv)
{
	static struct bench_fig rows[CH_MAX_ROWS];
	char in_buf[4096], out_buf[4096];
	const char *in, *out = NULL;
	unsigned int n, height;
	FILE *f;
	int c;

	while ((c = getopt(argc, argv, "o:h")) != -1) {
		if (c != 'o')
			bench_die("usage: chart [-o out.svg] [bench.json]");
		out = optarg;
	}
	in = optind < argc ? argv[optind] : bench_json_path(in_buf, sizeof(in_buf));
	if (!out) {
		ch_default_out(in, out_buf, sizeof(out_buf));
		out = out_buf;
	}
	n = ch_read(in, rows, CH_MAX_ROWS);
	if (!n)
		bench_die("chart: no rows in %s", in);
	height = CH_TOP + n * CH_ROW_H + 10;
	f = fopen(out, "w");
	if (!f)
		bench_die("chart: cannot write %s: %s", out, strerror(errno));
	ch_header(f, strrchr(in, '/') ? strrchr(in, '/') + 1 : in, n, height);
	ch_grid(f, height);
	for (unsigned int i = 0; i < n; i++)
		ch_row(f, &rows[i], i);
	fputs("</svg>\n", f);
	if (fclose(f))
		bench_die("chart: writing %s: %s", out, strerror(errno));
	printf("chart: %u rows of %s drawn in %s\n", n, in, out);
	return 0;
}
