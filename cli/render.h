/* render.h: shmgr-cli's output: values as JSON, and rows as aligned text tables. */
#ifndef CLI_RENDER_H
#define CLI_RENDER_H

#include <stdio.h>

#include "buf.h"
#include "value.h"

/* Write v (plain data: dict, list, tuple, str, bytes, int, float, bool, None) to f as JSON,
   indented by two spaces per level, with a newline at the end. Keys of a dict that are not
   str are written as their repr. */
void render_json(FILE *f, const value *v);

/* A text table: a header row, then rows of cells (strings), printed with each column as
   wide as its widest cell. Columns whose header starts with '>' are right-aligned (the '>'
   is not printed). */
typedef struct table {
  size_t ncols, nrows, cap;
  size_t *cells; /* nrows x ncols, row-major: where each cell's text starts in text */
  buf text;      /* every cell, NUL-terminated, one after the other (one allocation for
                    10,000 rows rather than 110,000) */
} table;

/* Start t with the header cells (ncols of them, copied). */
void table_init(table *t, size_t ncols, const char *const header[]);
/* Add a row of ncols cells (copied; NULL prints as "-"). */
void table_row(table *t, char *const cells[]);
/* Print t to f and free it. */
void table_print(table *t, FILE *f);

/* Helpers to make cells of a row in a buffer of 64 bytes: the value of d[key] as text
   ("-" for None or absent): ints as digits, floats with `decimals` places, str as is. */
const char *cell(char out[64], const value *d, const char *key, int decimals);
/* A number of bytes as 512, 1.5K, 20.3M, 1.1G. */
const char *cell_bytes(char out[64], const value *d, const char *key);
/* Seconds as 0.8s, 12s, 5m03s, 2h05m, 3d04h. */
const char *cell_age(char out[64], const value *d, const char *key);
/* The same for a value itself (NULL as None): a tuple's item, say. */
const char *cell_value(char out[64], const value *v, int decimals);
const char *cell_bytes_value(char out[64], const value *v);
const char *cell_age_value(char out[64], const value *v);

#endif
