// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Compact JSON, written as it goes: the writer only remembers, per level of nesting, whether
 * the next member needs a comma. Strings are escaped as RFC 8259 asks (file names can hold
 * anything but '/' and NUL); bytes that are not valid UTF-8 are passed through, as jq does
 * with what the kernel names.
 */
#include <stdio.h>

#include "keventctl.h"

void kc_json_init(struct kc_json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->more[0] = false;
}

static void kc_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* Before a value: the comma after the previous one, and the member's name. */
static void kc_json_member(struct kc_json *j, const char *key)
{
	if (j->more[j->depth])
		fputc(',', j->f);
	j->more[j->depth] = true;
	if (key) {
		kc_json_string(j->f, key);
		fputc(':', j->f);
	}
}

void kc_json_open(struct kc_json *j, const char *key, char bracket)
{
	kc_json_member(j, key);
	fputc(bracket, j->f);
	/* Deeper than the writer keeps is a bug of this program, not of its input. */
	if (j->depth < KC_JSON_DEPTH)
		j->depth++;
	j->more[j->depth] = false;
}

void kc_json_close(struct kc_json *j, char bracket)
{
	fputc(bracket, j->f);
	if (j->depth)
		j->depth--;
}

void kc_json_str(struct kc_json *j, const char *key, const char *s)
{
	kc_json_member(j, key);
	kc_json_string(j->f, s);
}

void kc_json_u64(struct kc_json *j, const char *key, unsigned long long v)
{
	kc_json_member(j, key);
	fprintf(j->f, "%llu", v);
}

void kc_json_i64(struct kc_json *j, const char *key, long long v)
{
	kc_json_member(j, key);
	fprintf(j->f, "%lld", v);
}

void kc_json_bool(struct kc_json *j, const char *key, bool v)
{
	kc_json_member(j, key);
	fputs(v ? "true" : "false", j->f);
}

void kc_json_null(struct kc_json *j, const char *key)
{
	kc_json_member(j, key);
	fputs("null", j->f);
}

/* A string member, or null when it is not known. */
void kc_json_known(struct kc_json *j, const char *key, const char *s)
{
	if (s[0])
		kc_json_str(j, key, s);
	else
		kc_json_null(j, key);
}

void kc_json_bits(struct kc_json *j, const char *key, const struct kc_bit *t, __u32 mask)
{
	char hex[16];

	kc_json_open(j, key, '[');
	for (; t->name; t++) {
		if (mask & t->bit)
			kc_json_str(j, NULL, t->name);
		mask &= ~t->bit;
	}
	if (mask) {
		snprintf(hex, sizeof(hex), "%#x", mask);
		kc_json_str(j, NULL, hex);
	}
	kc_json_close(j, ']');
}

void kc_json_end(struct kc_json *j)
{
	fputc('\n', j->f);
	fflush(j->f);
	kc_json_init(j, j->f);
}
