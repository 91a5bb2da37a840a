#ifndef HOURLEDGER_CCURL_SHIM_H
#define HOURLEDGER_CCURL_SHIM_H
#include <curl/curl.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: one typed wrapper per argument kind. */

typedef size_t (*hl_curl_data_cb)(char *ptr, size_t size, size_t nmemb, void *userdata);

static inline CURLcode hl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode hl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode hl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode hl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode hl_setopt_callback(CURL *h, CURLoption o, hl_curl_data_cb v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode hl_setopt_off_t(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }

static inline CURLcode hl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode hl_getinfo_double(CURL *h, CURLINFO i, double *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode hl_getinfo_off_t(CURL *h, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(h, i, v); }

/* Option names as plain values: some are macros built from enums that Swift imports awkwardly. */
static const CURLoption HL_OPT_URL = CURLOPT_URL;
static const CURLoption HL_OPT_WRITEFUNCTION = CURLOPT_WRITEFUNCTION;
static const CURLoption HL_OPT_WRITEDATA = CURLOPT_WRITEDATA;
static const CURLoption HL_OPT_HEADERFUNCTION = CURLOPT_HEADERFUNCTION;
static const CURLoption HL_OPT_HEADERDATA = CURLOPT_HEADERDATA;
static const CURLoption HL_OPT_HTTPHEADER = CURLOPT_HTTPHEADER;
static const CURLoption HL_OPT_CUSTOMREQUEST = CURLOPT_CUSTOMREQUEST;
static const CURLoption HL_OPT_POSTFIELDS = CURLOPT_COPYPOSTFIELDS;
static const CURLoption HL_OPT_POSTFIELDSIZE_LARGE = CURLOPT_POSTFIELDSIZE_LARGE;
static const CURLoption HL_OPT_POST = CURLOPT_POST;
static const CURLoption HL_OPT_HTTPGET = CURLOPT_HTTPGET;
static const CURLoption HL_OPT_NOBODY = CURLOPT_NOBODY;
static const CURLoption HL_OPT_CONNECTTIMEOUT_MS = CURLOPT_CONNECTTIMEOUT_MS;
static const CURLoption HL_OPT_TIMEOUT_MS = CURLOPT_TIMEOUT_MS;
static const CURLoption HL_OPT_SSL_VERIFYPEER = CURLOPT_SSL_VERIFYPEER;
static const CURLoption HL_OPT_SSL_VERIFYHOST = CURLOPT_SSL_VERIFYHOST;
static const CURLoption HL_OPT_CAINFO = CURLOPT_CAINFO;
static const CURLoption HL_OPT_USERAGENT = CURLOPT_USERAGENT;
static const CURLoption HL_OPT_ACCEPT_ENCODING = CURLOPT_ACCEPT_ENCODING;
static const CURLoption HL_OPT_NOSIGNAL = CURLOPT_NOSIGNAL;
static const CURLoption HL_OPT_ERRORBUFFER = CURLOPT_ERRORBUFFER;
static const CURLoption HL_OPT_FOLLOWLOCATION = CURLOPT_FOLLOWLOCATION;
static const CURLoption HL_OPT_PROXY = CURLOPT_PROXY;
static const CURLoption HL_OPT_NOPROXY = CURLOPT_NOPROXY;
static const CURLoption HL_OPT_TCP_KEEPALIVE = CURLOPT_TCP_KEEPALIVE;
static const CURLoption HL_OPT_FRESH_CONNECT = CURLOPT_FRESH_CONNECT;
static const CURLoption HL_OPT_FORBID_REUSE = CURLOPT_FORBID_REUSE;

static const CURLINFO HL_INFO_RESPONSE_CODE = CURLINFO_RESPONSE_CODE;
static const CURLINFO HL_INFO_TOTAL_TIME = CURLINFO_TOTAL_TIME;
static const CURLINFO HL_INFO_SIZE_DOWNLOAD = CURLINFO_SIZE_DOWNLOAD_T;

#endif
