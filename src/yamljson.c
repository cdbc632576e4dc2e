#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util.h"
#include "yamljson.h"

/* Guard against billion-laughs style documents built from aliases. */
#define MAX_DEPTH 64
#define MAX_NODES 1000000

struct conv {
	yaml_document_t *doc;
	size_t nodes;
	char *err;
};

static bool plain_is(const char *v, const char *const *words)
{
	for (; *words; words++)
		if (strcmp(v, *words) == 0)
			return true;
	return false;
}

static json_t *scalar(yaml_node_t *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const trues[] = { "true", "True", "TRUE", NULL };
	static const char *const falses[] = { "false", "False", "FALSE", NULL };
	const char *v = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;
	char *end;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || strlen(v) != len)
		return json_stringn(v, len);
	if (plain_is(v, nulls))
		return json_null();
	if (plain_is(v, trues))
		return json_true();
	if (plain_is(v, falses))
		return json_false();
	if ((v[0] >= '0' && v[0] <= '9') || ((v[0] == '-' || v[0] == '+') && v[1] >= '0' && v[1] <= '9')) {
		long long ll;
		double d;

		errno = 0;
		ll = strtoll(v, &end, 10);
		if (!*end && !errno)
			return json_integer(ll);
		errno = 0;
		d = strtod(v, &end);
		if (!*end && !errno && strpbrk(v, ".eE"))
			return json_real(d);
	}
	return json_stringn(v, len);
}

static json_t *convert(struct conv *c, yaml_node_t *n, int depth)
{
	json_t *out;

	if (!n) {
		c->err = xstrdup("dangling node reference");
		return NULL;
	}
	if (depth > MAX_DEPTH) {
		c->err = xasprintf("line %zu: nesting deeper than %d", n->start_mark.line + 1, MAX_DEPTH);
		return NULL;
	}
	if (++c->nodes > MAX_NODES) {
		c->err = xasprintf("more than %d nodes (alias expansion?)", MAX_NODES);
		return NULL;
	}
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return scalar(n);
	case YAML_SEQUENCE_NODE:
		out = json_array();
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			json_t *v = convert(c, yaml_document_get_node(c->doc, *it), depth + 1);

			if (!v) {
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, v);
		}
		return out;
	case YAML_MAPPING_NODE:
		out = json_object();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
			json_t *v;

			if (!k || k->type != YAML_SCALAR_NODE) {
				c->err = xasprintf("line %zu: mapping key is not a scalar",
						   n->start_mark.line + 1);
				json_decref(out);
				return NULL;
			}
			v = convert(c, yaml_document_get_node(c->doc, p->value), depth + 1);
			if (!v) {
				json_decref(out);
				return NULL;
			}
			json_object_setn_new(out, (const char *)k->data.scalar.value,
					     k->data.scalar.length, v);
		}
		return out;
	default:
		c->err = xstrdup("empty node");
		return NULL;
	}
}

json_t *yaml_to_json(const char *buf, size_t len, char **err)
{
	yaml_parser_t parser;
	json_t *docs = json_array();

	*err = NULL;
	if (!yaml_parser_initialize(&parser)) {
		*err = xstrdup("cannot initialise the YAML parser");
		json_decref(docs);
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	for (;;) {
		yaml_document_t doc;
		yaml_node_t *root;
		struct conv c = { &doc, 0, NULL };
		json_t *v;

		if (!yaml_parser_load(&parser, &doc)) {
			*err = xasprintf("line %zu column %zu: %s", parser.problem_mark.line + 1,
					 parser.problem_mark.column + 1,
					 parser.problem ? parser.problem : "YAML syntax error");
			break;
		}
		root = yaml_document_get_root_node(&doc);
		if (!root) {
			yaml_document_delete(&doc);
			break;  /* end of stream */
		}
		v = convert(&c, root, 0);
		yaml_document_delete(&doc);
		if (!v) {
			*err = c.err;
			break;
		}
		if (!json_is_null(v))
			json_array_append_new(docs, v);
		else
			json_decref(v);
	}
	yaml_parser_delete(&parser);
	if (*err) {
		json_decref(docs);
		return NULL;
	}
	return docs;
}
