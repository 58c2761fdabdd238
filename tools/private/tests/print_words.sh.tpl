#!/bin/sh
# Prints each word the rule gave, then each word given at run time, one per line.
for word in {{words}} "$@"; do
  printf '[%s]\n' "$word"
done
