#ifndef FSCONF_GLUE_H
#define FSCONF_GLUE_H
int fsconf_glue_placeholder(void);
#endif
