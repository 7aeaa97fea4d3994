/*-------------------------------------------------------------------------
 *
 * signature.c
 *	  HubSpot's webhook request signatures, computed with OpenSSL and
 *	  compared in constant time.
 *
 *	  v1 = hex(SHA-256(secret || body))
 *	  v2 = hex(SHA-256(secret || METHOD || URI || body))
 *	  v3 = base64(HMAC-SHA256(key = secret, METHOD || URI || body || timestamp))
 *
 * For v3 the URI is the full public URL HubSpot called, with a fixed list
 * of percent-escapes decoded first (API notes section 13).  The secret is
 * the app's client secret; it never leaves this file except as a MAC, and
 * every buffer that held key material is wiped.
 *
 * Nothing here touches PostgreSQL state other than palloc, so it is safe
 * to call from the receiver and from SQL alike (always on the main thread),
 * and it builds with -DFRONTEND for the libFuzzer harness (test/fuzz/).
 *
 * IDENTIFICATION
 *	  src/util/signature.c
 *
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"		/* the fuzzing harnesses in test/fuzz/ */
#else
#include "postgres.h"
#endif

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "lib/stringinfo.h"
#include "util/signature.h"

/* The escapes HubSpot decodes before computing a v3 signature */
static const struct
{
	const char *hex;			/* the two hex digits after '%' */
	char		ch;
}			v3_escapes[] =
{
	{"3A", ':'}, {"2F", '/'}, {"3F", '?'}, {"40", '@'}, {"21", '!'},
	{"24", '$'}, {"27", '\''}, {"28", '('}, {"29", ')'}, {"2A", '*'},
	{"2C", ','}, {"3B", ';'}
};

/*
 * hubsync_v3_uri -- the URI as HubSpot signs it in v3: only the listed
 * escapes are decoded (hex digits in either case); everything else,
 * including other escapes, stays as received.
 */
char *
hubsync_v3_uri(const char *uri)
{
	size_t		len = strlen(uri);
	char	   *out = palloc(len + 1);
	size_t		i = 0,
				o = 0;

	while (i < len)
	{
		bool		decoded = false;

		if (uri[i] == '%' && i + 2 < len)
		{
			int			k;

			for (k = 0; k < lengthof(v3_escapes); k++)
			{
				if (pg_toupper((unsigned char) uri[i + 1]) == v3_escapes[k].hex[0] &&
					pg_toupper((unsigned char) uri[i + 2]) == v3_escapes[k].hex[1])
				{
					out[o++] = v3_escapes[k].ch;
					i += 3;
					decoded = true;
					break;
				}
			}
		}
		if (!decoded)
			out[o++] = uri[i++];
	}
	out[o] = '\0';
	return out;
}

/* to_hex -- lowercase hex of a digest */
static void
to_hex(const unsigned char *md, int len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	int			i;

	for (i = 0; i < len; i++)
	{
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

/*
 * hubsync_signature_compute -- the signature string of a request for
 * version 1, 2 or 3 into out (at least 65 bytes).  Returns false when
 * OpenSSL fails or the arguments are unusable.
 */
bool
hubsync_signature_compute(int version, const char *secret,
						  const char *method, const char *uri,
						  const char *body, size_t body_len,
						  const char *timestamp, char *out, size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	bool		ok = false;

	if (secret == NULL || outlen < HUBSYNC_SIG_HEX_LEN + 1)
		return false;
	if (body == NULL)
		body_len = 0;

	if (version == 1 || version == 2)
	{
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		if (ctx == NULL)
			return false;
		ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
			EVP_DigestUpdate(ctx, secret, strlen(secret)) == 1;
		if (ok && version == 2)
			ok = method != NULL && uri != NULL &&
				EVP_DigestUpdate(ctx, method, strlen(method)) == 1 &&
				EVP_DigestUpdate(ctx, uri, strlen(uri)) == 1;
		if (ok && body_len > 0)
			ok = EVP_DigestUpdate(ctx, body, body_len) == 1;
		if (ok)
			ok = EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
		EVP_MD_CTX_free(ctx);
		if (ok)
			to_hex(md, (int) mdlen, out);
	}
	else if (version == 3)
	{
		StringInfoData msg;
		char	   *signed_uri;

		if (method == NULL || uri == NULL || timestamp == NULL)
			return false;
		signed_uri = hubsync_v3_uri(uri);
		initStringInfo(&msg);
		appendStringInfoString(&msg, method);
		appendStringInfoString(&msg, signed_uri);
		if (body_len > 0)
			appendBinaryStringInfo(&msg, body, (int) body_len);
		appendStringInfoString(&msg, timestamp);
		ok = HMAC(EVP_sha256(), secret, (int) strlen(secret),
				  (const unsigned char *) msg.data, (size_t) msg.len,
				  md, &mdlen) != NULL;
		pfree(msg.data);
		pfree(signed_uri);
		if (ok)
			ok = EVP_EncodeBlock((unsigned char *) out, md, (int) mdlen) == HUBSYNC_SIG_V3_LEN;
	}
	explicit_bzero(md, sizeof(md));
	return ok;
}

/*
 * hubsync_signature_verify -- whether signature is the right one for the
 * request, compared in constant time (CRYPTO_memcmp over equal lengths).
 */
bool
hubsync_signature_verify(int version, const char *secret,
						 const char *method, const char *uri,
						 const char *body, size_t body_len,
						 const char *timestamp, const char *signature)
{
	char		expected[HUBSYNC_SIG_HEX_LEN + 1];
	size_t		len;
	bool		ok;

	if (signature == NULL || secret == NULL || *secret == '\0')
		return false;
	if (!hubsync_signature_compute(version, secret, method, uri, body, body_len,
								   timestamp, expected, sizeof(expected)))
		return false;
	len = strlen(expected);
	ok = strlen(signature) == len &&
		CRYPTO_memcmp(expected, signature, len) == 0;
	explicit_bzero(expected, sizeof(expected));
	return ok;
}
