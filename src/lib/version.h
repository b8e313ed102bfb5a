#ifndef LIB_VERSION_H
#define LIB_VERSION_H
/* The release, shown on the status page and in postoffice_build_info. */
#define POSTOFFICE_VERSION "0.2.0"
#endif
