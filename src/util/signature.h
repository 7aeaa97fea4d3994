/*-------------------------------------------------------------------------
 *
 * signature.h
 *	  HubSpot request signatures (v1, v2, v3) and their verification.
 *
 * IDENTIFICATION
 *	  src/util/signature.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_SIGNATURE_H
#define HUBSYNC_SIGNATURE_H

#include <stddef.h>

/* base64 of a SHA-256 HMAC with padding: 44 chars + NUL */
#define HUBSYNC_SIG_V3_LEN 44
/* lowercase hex of a SHA-256 digest: 64 chars + NUL */
#define HUBSYNC_SIG_HEX_LEN 64

extern char *hubsync_v3_uri(const char *uri);
extern bool hubsync_signature_compute(int version, const char *secret,
									  const char *method, const char *uri,
									  const char *body, size_t body_len,
									  const char *timestamp, char *out,
									  size_t outlen);
extern bool hubsync_signature_verify(int version, const char *secret,
									 const char *method, const char *uri,
									 const char *body, size_t body_len,
									 const char *timestamp,
									 const char *signature);

#endif							/* HUBSYNC_SIGNATURE_H */
