/* recur's version: the Lua module's recur.version, the rock's and recur.pc's (the
 * Makefile reads it from here). */
#ifndef RECUR_VERSION_H
#define RECUR_VERSION_H

#define RECUR_VERSION "0.1.0"

#endif
