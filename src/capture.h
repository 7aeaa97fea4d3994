/*-------------------------------------------------------------------------
 *
 * capture.h
 *	  Change capture on the mirror tables.
 *
 * IDENTIFICATION
 *	  src/capture.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_CAPTURE_H
#define HUBSYNC_CAPTURE_H

/*
 * Set only by hubsync's own workers while they apply HubSpot's changes;
 * writes made meanwhile are not captured.  No SQL can set it.
 */
extern bool hubsync_applying_remote;

#endif							/* HUBSYNC_CAPTURE_H */
