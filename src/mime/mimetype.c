/* Content types by file name extension, for attachments we compose. */
#include "mime/compose.h"

#include <string.h>
#include <strings.h>

static const struct {
	const char *ext, *type;
} mime_types[] = {
    {"txt", "text/plain"},
    {"text", "text/plain"},
    {"log", "text/plain"},
    {"html", "text/html"},
    {"htm", "text/html"},
    {"css", "text/css"},
    {"csv", "text/csv"},
    {"md", "text/markdown"},
    {"ics", "text/calendar"},
    {"vcf", "text/vcard"},
    {"xml", "application/xml"},
    {"json", "application/json"},
    {"js", "text/javascript"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tgz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"xz", "application/x-xz"},
    {"bz2", "application/x-bzip2"},
    {"7z", "application/x-7z-compressed"},
    {"doc", "application/msword"},
    {"xls", "application/vnd.ms-excel"},
    {"ppt", "application/vnd.ms-powerpoint"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
    {"rtf", "application/rtf"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"svg", "image/svg+xml"},
    {"bmp", "image/bmp"},
    {"ico", "image/vnd.microsoft.icon"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"heic", "image/heic"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
    {"flac", "audio/flac"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mov", "video/quicktime"},
    {"eml", "message/rfc822"},
    {"asc", "application/pgp-signature"},
    {"sig", "application/pgp-signature"},
    {"p7s", "application/pkcs7-signature"},
};

const char *mime_type_from_filename(const char *filename)
{
	const char *dot = filename != NULL ? strrchr(filename, '.') : NULL;
	if (dot != NULL && strchr(dot, '/') == NULL) {
		for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++)
			if (!strcasecmp(dot + 1, mime_types[i].ext))
				return mime_types[i].type;
	}
	return "application/octet-stream";
}
