"""Which layers a closure of Debian packages becomes: one per Debian source package, dependencies first.

A security update changes one source package (all its binaries at once), so a client holding the image
re-pulls only that source's layer. Images stay within MAX_LAYERS by one rule (fold): when the largest
variant would exceed it, the runtime closure's smallest sources by locked .deb size share one layer, as few
as make it fit (README.md, "Layers by source package", gives the figures behind it).
"""

# Registries and engines handle more, but distroless's users report pull quotas at ~48 layers per image.
MAX_LAYERS = 30

# The layer that folded sources share, named in place of a source.
FOLDED = "folded"

def by_source(packages, names):
    """Source package name -> the sorted names among `names` built from it."""
    sources = {}
    for name in sorted(names):
        sources.setdefault(packages[name]["source"], []).append(name)
    return sources

def source_order(packages, sources):
    """The keys of `sources` with each after the sources it depends on; a dependency cycle (glibc and gcc's
    libgcc-s1, say) is entered at its smallest-named source, so the order is the same on every machine."""
    owner = {name: source for source, names in sources.items() for name in names}
    needs = {}
    for source, names in sources.items():
        needs[source] = sorted({
            owner[dep]: True
            for name in names
            for dep in packages[name]["depends"]
            if dep in owner and owner[dep] != source
        }.keys())
    ordered = []
    done = {}

    # Starlark has no while loop; each pass places at least one source.
    for _ in range(len(sources)):
        remaining = [source for source in sorted(sources) if source not in done]
        if not remaining:
            break
        ready = [source for source in remaining if not [dep for dep in needs[source] if dep not in done]]
        for source in ready or remaining[:1]:
            done[source] = True
            ordered.append(source)
    return ordered

def source_size(packages, names):
    size = 0
    for name in names:
        size += packages[name]["size"]
    return size

def fold(packages, sources, budget):
    """(sources to fold into one layer, sorted) so that `sources` take at most `budget` layers: none when they
    fit, else the smallest by locked .deb size, ties by name."""
    if len(sources) <= budget:
        return []
    if budget < 2:
        fail("a closure of %d sources cannot fit %d layers; raise MAX_LAYERS in python/private/source_layers.bzl" % (len(sources), budget))
    smallest = sorted(sorted(sources), key = lambda source: source_size(packages, sources[source]))
    return sorted(smallest[:len(sources) - budget + 1])

def layer_plan(packages, sources, folded):
    """[(layer suffix, package names)] in dependency order: a source's own layer, or the folded layer at the
    place of the first folded source."""
    plan = []
    folded_names = sorted([name for source in folded for name in sources[source]])
    for source in source_order(packages, sources):
        if source not in folded:
            plan.append((source, sources[source]))
        elif folded_names:
            plan.append((FOLDED, folded_names))
            folded_names = []
    return plan
