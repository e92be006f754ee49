/* render.c: shmgr-cli's output: values as JSON, and rows as aligned text tables. */
#include "render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static void json_str(FILE *f, const char *s, size_t n) {
  fputc('"', f);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
    else if (ch == '\n') fputs("\\n", f);
    else if (ch == '\t') fputs("\\t", f);
    else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
    else fputc(ch, f); /* UTF-8 passes through: JSON is UTF-8 */
  }
  fputc('"', f);
}

static void indent(FILE *f, int level) {
  fputc('\n', f);
  for (int i = 0; i < level; i++) fputs("  ", f);
}

static void json(FILE *f, const value *v, int level) {
  switch (v->kind) {
  case VK_NONE: fputs("null", f); break;
  case VK_BOOL: fputs(v->u.b ? "true" : "false", f); break;
  case VK_INT: fprintf(f, "%lld", (long long)v->u.i); break;
  case VK_FLOAT:
    if (isfinite(v->u.f)) fprintf(f, "%.17g", v->u.f);
    else fputs("null", f); /* JSON has no NaN or infinity */
    break;
  case VK_STR:
  case VK_BYTES: json_str(f, (const char *)v->u.s.data, v->u.s.len); break;
  case VK_LIST:
  case VK_TUPLE:
    if (!v->u.seq.len) {
      fputs("[]", f);
      break;
    }
    fputc('[', f);
    for (size_t i = 0; i < v->u.seq.len; i++) {
      if (i) fputc(',', f);
      indent(f, level + 1);
      json(f, v->u.seq.items[i], level + 1);
    }
    indent(f, level);
    fputc(']', f);
    break;
  case VK_DICT: {
    if (!dict_len(v)) {
      fputs("{}", f);
      break;
    }
    fputc('{', f);
    size_t pos = 0, i = 0;
    value *k, *x;
    while (dict_next(v, &pos, &k, &x)) {
      if (i++) fputc(',', f);
      indent(f, level + 1);
      if (k->kind == VK_STR) {
        json_str(f, (const char *)k->u.s.data, k->u.s.len);
      } else {
        buf text = {0};
        v_repr(&text, k);
        json_str(f, (const char *)text.data, text.len);
        buf_free(&text);
      }
      fputs(": ", f);
      json(f, x, level + 1);
    }
    indent(f, level);
    fputc('}', f);
    break;
  }
  default: { /* not plain data: its repr, as a string */
    buf text = {0};
    v_repr(&text, v);
    json_str(f, (const char *)text.data, text.len);
    buf_free(&text);
  }
  }
}

void render_json(FILE *f, const value *v) {
  json(f, v, 0);
  fputc('\n', f);
}

void table_init(table *t, size_t ncols, const char *const header[]) {
  *t = (table){.ncols = ncols};
  table_row(t, (char *const *)header);
}

void table_row(table *t, char *const cells[]) {
  if (t->nrows == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 64;
    t->cells = xrealloc(t->cells, t->cap * t->ncols * sizeof *t->cells);
  }
  for (size_t i = 0; i < t->ncols; i++) {
    const char *s = cells[i] ? cells[i] : "-";
    t->cells[t->nrows * t->ncols + i] = t->text.len;
    buf_put(&t->text, s, strlen(s) + 1);
  }
  t->nrows++;
}

void table_print(table *t, FILE *f) {
  size_t *w = xcalloc(t->ncols, sizeof *w);
  bool *right = xcalloc(t->ncols, sizeof *right);
  char *text = (char *)t->text.data;
  for (size_t c = 0; c < t->ncols; c++)
    if (text[t->cells[c]] == '>') right[c] = true, t->cells[c]++; /* the header's mark is not printed */
  for (size_t r = 0; r < t->nrows; r++)
    for (size_t c = 0; c < t->ncols; c++) {
      size_t n = strlen(text + t->cells[r * t->ncols + c]);
      if (n > w[c]) w[c] = n;
    }
  for (size_t r = 0; r < t->nrows; r++) {
    for (size_t c = 0; c < t->ncols; c++) {
      const char *s = text + t->cells[r * t->ncols + c];
      size_t n = strlen(s);
      bool last = c + 1 == t->ncols;
      if (right[c]) for (size_t k = n; k < w[c]; k++) fputc(' ', f);
      fwrite(s, 1, n, f);
      if (!right[c] && !last) for (size_t k = n; k < w[c]; k++) fputc(' ', f); /* no trailing blanks */
      if (!last) fputs("  ", f);
    }
    fputc('\n', f);
  }
  buf_free(&t->text);
  free(t->cells);
  free(w);
  free(right);
  *t = (table){0};
}

const char *cell(char out[64], const value *d, const char *key, int decimals) {
  const value *v = d->kind == VK_DICT ? dict_get_str(d, key) : NULL;
  if (!v || v->kind == VK_NONE) return "-";
  if (v->kind == VK_INT) snprintf(out, 64, "%lld", (long long)v->u.i);
  else if (v->kind == VK_FLOAT) snprintf(out, 64, "%.*f", decimals, v->u.f);
  else if (v->kind == VK_BOOL) snprintf(out, 64, "%s", v->u.b ? "yes" : "no");
  else if (v->kind == VK_STR) snprintf(out, 64, "%.*s", (int)(v->u.s.len < 63 ? v->u.s.len : 63), (const char *)v->u.s.data);
  else return "?";
  return out[0] ? out : "-";
}

static double number(const value *d, const char *key, bool *ok) {
  const value *v = d->kind == VK_DICT ? dict_get_str(d, key) : NULL;
  *ok = v && (v->kind == VK_INT || v->kind == VK_FLOAT);
  return !*ok ? 0 : v->kind == VK_INT ? (double)v->u.i : v->u.f;
}

const char *cell_bytes(char out[64], const value *d, const char *key) {
  bool ok;
  double n = number(d, key, &ok);
  if (!ok) return "-";
  static const char units[] = "KMGTP";
  if (n < 1024) {
    snprintf(out, 64, "%.0f", n);
    return out;
  }
  int u = -1;
  while (n >= 1024 && u < 4) n /= 1024, u++;
  snprintf(out, 64, "%.1f%c", n, units[u]);
  return out;
}

const char *cell_age(char out[64], const value *d, const char *key) {
  bool ok;
  double s = number(d, key, &ok);
  if (!ok) return "-";
  long long t = (long long)s;
  if (s < 10) snprintf(out, 64, "%.1fs", s);
  else if (s < 60) snprintf(out, 64, "%llds", t);
  else if (s < 3600) snprintf(out, 64, "%lldm%02llds", t / 60, t % 60);
  else if (s < 86400) snprintf(out, 64, "%lldh%02lldm", t / 3600, t / 60 % 60);
  else snprintf(out, 64, "%lldd%02lldh", t / 86400, t / 3600 % 24);
  return out;
}
