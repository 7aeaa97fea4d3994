/*-------------------------------------------------------------------------
 *
 * housekeeping.h
 *	  The pull worker's housekeeping round.
 *
 * IDENTIFICATION
 *	  src/pull/housekeeping.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_HOUSEKEEPING_H
#define HUBSYNC_HOUSEKEEPING_H

extern void hubsync_housekeeping(void);

#endif							/* HUBSYNC_HOUSEKEEPING_H */
