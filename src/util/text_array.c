/*-------------------------------------------------------------------------
 *
 * text_array.c
 *	  A text[] datum as C strings: the property lists and names SQL hands
 *	  to the workers.
 *
 * IDENTIFICATION
 *	  src/util/text_array.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "util/text_array.h"

/*
 * hubsync_text_array -- the elements of a one-dimensional text[] as
 * palloc'd C strings in *out (a NULL element as ""); returns how many.
 */
int
hubsync_text_array(Datum array, char ***out)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	*out = palloc(sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
		(*out)[i] = nulls[i] ? pstrdup("") : TextDatumGetCString(elems[i]);
	return n;
}
