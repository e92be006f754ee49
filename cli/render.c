/* render.c: shmgr-cli's output: values as JSON, and rows as aligned text tables. */
#include "render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static void json_str(FILE *f, const char *s, size_t n) {
  fputc('"', f);
  size_t plain = 0; /* s[plain..i) needs no escape: written in one go */
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch >= 0x20 && ch != '"' && ch != '\\') continue; /* UTF-8 passes through: JSON is UTF-8 */
    fwrite(s + plain, 1, i - plain, f);
    plain = i + 1;
    if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
    else if (ch == '\n') fputs("\\n", f);
    else if (ch == '\t') fputs("\\t", f);
    else fprintf(f, "\\u%04x", ch);
  }
  fwrite(s + plain, 1, n - plain, f);
  fputc('"', f);
}

/* Write n blanks. */
static void blanks(FILE *f, size_t n) {
  static const char run[64] = "                                                                ";
  for (size_t k; n; n -= k) fwrite(run, 1, k = n < sizeof run ? n : sizeof run, f);
}

static void indent(FILE *f, int level) {
  fputc('\n', f);
  blanks(f, 2 * (size_t)level);
}

/* n in decimal into out (at least 21 bytes); returns out. */
static char *decimal(char *out, int64_t n) {
  char digits[24];
  size_t i = sizeof digits;
  uint64_t u = n < 0 ? -(uint64_t)n : (uint64_t)n;
  digits[--i] = 0;
  do digits[--i] = (char)('0' + u % 10);
  while (u /= 10);
  if (n < 0) digits[--i] = '-';
  return memcpy(out, digits + i, sizeof digits - i);
}

static void json(FILE *f, const value *v, int level) {
  switch (v->kind) {
  case VK_NONE: fputs("null", f); break;
  case VK_BOOL: fputs(v->u.b ? "true" : "false", f); break;
  case VK_INT: {
    char digits[24];
    fputs(decimal(digits, v->u.i), f);
    break;
  }
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

/* Cell i's text and its length (cells are NUL-terminated one after the other in text),
   without the '>' mark of a header cell. */
static const char *cell_at(const table *t, size_t i, size_t *n) {
  size_t start = t->cells[i], end = i + 1 < t->nrows * t->ncols ? t->cells[i + 1] : t->text.len;
  const char *s = (const char *)t->text.data + start;
  *n = end - start - 1;
  if (i < t->ncols && *s == '>') s++, --*n;
  return s;
}

void table_print(table *t, FILE *f) {
  size_t *w = xcalloc(t->ncols, sizeof *w);
  bool *right = xcalloc(t->ncols, sizeof *right);
  for (size_t c = 0; c < t->ncols; c++) right[c] = t->text.data[t->cells[c]] == '>';
  for (size_t r = 0; r < t->nrows; r++)
    for (size_t c = 0; c < t->ncols; c++) {
      size_t n;
      cell_at(t, r * t->ncols + c, &n);
      if (n > w[c]) w[c] = n;
    }
  buf line = {0}; /* each row is written in one go */
  for (size_t r = 0; r < t->nrows; r++) {
    line.len = 0;
    for (size_t c = 0; c < t->ncols; c++) {
      size_t n;
      const char *s = cell_at(t, r * t->ncols + c, &n);
      bool last = c + 1 == t->ncols;
      size_t pad = last && !right[c] ? 0 : w[c] - n; /* no trailing blanks */
      buf_reserve(&line, pad + n + 3);
      uint8_t *out = line.data + line.len;
      memset(out, ' ', pad + n);
      memcpy(out + (right[c] ? pad : 0), s, n);
      line.len += pad + n;
      if (!last) buf_put(&line, "  ", 2);
    }
    buf_put(&line, "\n", 1);
    fwrite(line.data, 1, line.len, f);
  }
  buf_free(&line);
  buf_free(&t->text);
  free(t->cells);
  free(w);
  free(right);
  *t = (table){0};
}

/* d[key], or NULL when d is no dict or has no such key. */
static const value *field(const value *d, const char *key) { return d->kind == VK_DICT ? dict_get_str(d, key) : NULL; }

const char *cell(char out[64], const value *d, const char *key, int decimals) {
  return cell_value(out, field(d, key), decimals);
}

const char *cell_value(char out[64], const value *v, int decimals) {
  if (!v || v->kind == VK_NONE) return "-";
  if (v->kind == VK_INT) decimal(out, v->u.i);
  else if (v->kind == VK_FLOAT) snprintf(out, 64, "%.*f", decimals, v->u.f);
  else if (v->kind == VK_BOOL) return v->u.b ? "yes" : "no";
  else if (v->kind == VK_STR) {
    size_t n = v->u.s.len < 63 ? v->u.s.len : 63;
    memcpy(out, v->u.s.data, n);
    out[n] = 0;
  } else return "?";
  return out[0] ? out : "-";
}

static double number(const value *v, bool *ok) {
  *ok = v && (v->kind == VK_INT || v->kind == VK_FLOAT);
  return !*ok ? 0 : v->kind == VK_INT ? (double)v->u.i : v->u.f;
}

const char *cell_bytes(char out[64], const value *d, const char *key) { return cell_bytes_value(out, field(d, key)); }

const char *cell_bytes_value(char out[64], const value *v) {
  bool ok;
  double n = number(v, &ok);
  if (!ok) return "-";
  static const char units[] = "KMGTP";
  if (v->kind == VK_INT && v->u.i < 1024) return decimal(out, v->u.i);
  if (n < 1024) {
    snprintf(out, 64, "%.0f", n);
    return out;
  }
  int u = -1;
  while (n >= 1024 && u < 4) n /= 1024, u++;
  snprintf(out, 64, "%.1f%c", n, units[u]);
  return out;
}

const char *cell_age(char out[64], const value *d, const char *key) { return cell_age_value(out, field(d, key)); }

const char *cell_age_value(char out[64], const value *v) {
  bool ok;
  double s = number(v, &ok);
  if (!ok) return "-";
  long long t = (long long)s;
  if (s < 10) snprintf(out, 64, "%.1fs", s);
  else if (s < 60) snprintf(out, 64, "%llds", t);
  else if (s < 3600) snprintf(out, 64, "%lldm%02llds", t / 60, t % 60);
  else if (s < 86400) snprintf(out, 64, "%lldh%02lldm", t / 3600, t / 60 % 60);
  else snprintf(out, 64, "%lldd%02lldh", t / 86400, t / 3600 % 24);
  return out;
}
