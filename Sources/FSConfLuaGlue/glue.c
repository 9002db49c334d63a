#include "fsconf_glue.h"
int fsconf_glue_placeholder(void) { return 0; }
