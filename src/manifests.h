/* The standalone source: a directory of YAML (multi-document) and JSON
 * files holding Services, EndpointSlices, v1 Endpoints or a `kind: List`.
 * Watched with inotify; a broken file is reported (file, object, field) and
 * its last good content keeps being served. Services without a ClusterIP get
 * one from the allocator. */
#ifndef KP_MANIFESTS_H
#define KP_MANIFESTS_H

struct loop;
struct store;
struct allocator;
struct manifest_source;

/* Called after the source changed the store. */
typedef void (*manifests_changed_cb)(void *arg);

/* Scans dir once (synchronously, so the first sync sees everything), then
 * watches it through the loop (l may be NULL: no watching, for --dry-run and
 * tests). Returns NULL with *err if dir cannot be read. */
struct manifest_source *manifests_open(struct loop *l, struct store *st, struct allocator *alloc,
				       const char *dir, manifests_changed_cb cb, void *arg, char **err);
/* Rescans the whole directory now (also done on inotify events). */
void manifests_rescan(struct manifest_source *m);
void manifests_close(struct manifest_source *m);

#endif
