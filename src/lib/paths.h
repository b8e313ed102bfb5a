#ifndef LIB_PATHS_H
#define LIB_PATHS_H
/* Where postoffice keeps its data and looks for its configuration when not
   told otherwise.  A build in a checkout uses ./var for both (the embedded
   default, so that the README's commands work from any clone); `make
   install` builds with -DPO_DATA_DIR=/var/lib/postoffice and
   -DPO_CONFIG_FILE=/etc/postoffice/postoffice.conf (see the Makefile). */
#ifndef PO_DATA_DIR
#define PO_DATA_DIR "var"
#endif
#ifndef PO_CONFIG_FILE
#define PO_CONFIG_FILE PO_DATA_DIR "/postoffice.conf"
#endif
/* The date the manual pages carry (mdoc's .Dd). */
#define PO_MANUAL_DATE "December 6, 2026"
#endif
