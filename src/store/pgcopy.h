/*
 * pgcopy.h - rows in PostgreSQL's binary COPY format, built in a cw_buf.
 *
 * The processor's command-log and event rows go to the server with
 * COPY ... FROM STDIN (FORMAT binary): the server neither parses an INSERT
 * per chunk nor converts integers from text, and the rows travel as one
 * stream. No libpq here: only the bytes (store_pg.c sends them).
 */
#ifndef CW_PGCOPY_H
#define CW_PGCOPY_H

#include "core/buf.h"

#include <jansson.h>
#include <stdint.h>

/* Starts a row of n fields (the stream's header first, when b is empty). */
void cw_pgcopy_row(struct cw_buf *b, int n);
/* A text field; NULL is SQL NULL. */
void cw_pgcopy_text(struct cw_buf *b, const char *text);
/* A JSON text field: text, or v serialised when text is NULL (an absent v reads {}). */
void cw_pgcopy_json(struct cw_buf *b, const char *text, const json_t *v);
/* A BIGINT field. */
void cw_pgcopy_int8(struct cw_buf *b, int64_t v);
void cw_pgcopy_null(struct cw_buf *b);
/* Ends the stream (the trailer); b then holds what PQputCopyData sends. */
void cw_pgcopy_finish(struct cw_buf *b);

/*
 * Reading the rows back, to send them as binary parameters of an INSERT
 * instead (each field is then its parameter's value): cw_pgcopy_first_row
 * gives the offset of the first row, cw_pgcopy_next_row steps over a row's
 * field count, cw_pgcopy_field reads one field. The stream must be one
 * these functions wrote, not yet finished.
 */
size_t cw_pgcopy_first_row(void);
/* The field count of the row at *at; *at moves past it. */
int cw_pgcopy_next_row(const struct cw_buf *b, size_t *at);
/* The field at *at: *len bytes at *data, or NULL (*data NULL); *at moves past it. */
void cw_pgcopy_field(const struct cw_buf *b, size_t *at, const char **data, size_t *len);

/*
 * A one-dimensional array without NULLs in binary form, for a parameter
 * sent with format 1: cw_pgcopy_array_start, then each element with
 * cw_pgcopy_array_text or cw_pgcopy_array_int8, then cw_pgcopy_array_end
 * with the element count.
 */
/* b must be empty: the element count is patched at a fixed offset. */
void cw_pgcopy_array_start(struct cw_buf *b, uint32_t element_oid);
void cw_pgcopy_array_text(struct cw_buf *b, const char *text);
void cw_pgcopy_array_int8(struct cw_buf *b, int64_t v);
void cw_pgcopy_array_end(struct cw_buf *b, uint32_t n);

#endif
