/* YAML (libyaml) to jansson: config files, kubeconfigs and manifests are
 * YAML or JSON; everything past this file reads json_t. */
#ifndef KP_YAMLJSON_H
#define KP_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>

/* Parses every document in buf (YAML 1.2 core schema for plain scalars:
 * null/~, true/false, integers, floats; quoted scalars stay strings; anchors
 * and aliases are supported). JSON input is valid YAML. Returns a JSON array
 * with one element per non-empty document, or NULL with *err
 * ("line L column C: problem") set. Caller frees both. */
json_t *yaml_to_json(const char *buf, size_t len, char **err);

#endif
