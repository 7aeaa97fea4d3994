/*-------------------------------------------------------------------------
 *
 * text_array.h
 *	  A text[] datum as C strings.
 *
 * IDENTIFICATION
 *	  src/util/text_array.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_TEXT_ARRAY_H
#define HUBSYNC_TEXT_ARRAY_H

extern int	hubsync_text_array(Datum array, char ***out);

#endif							/* HUBSYNC_TEXT_ARRAY_H */
