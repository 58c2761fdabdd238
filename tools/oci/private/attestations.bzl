"""What an image attests: the SBOM and provenance predicates its target carries, for the push and verify rules.

An oci_image given `sbom` and `provenance` carries them in OciAttestationsInfo, an oci_image_index carries its
images', and an oci_push carries what it attaches: oci_push, oci_push_all and oci_verify_all find the
attestations from the image targets they are given.
"""

OciAttestationsInfo = provider(
    doc = "The attestations of an image, an index's images, or an oci_push, as tools/oci/push.py and verify.py take them.",
    fields = {
        "arguments": "list of --attest LAYOUT=TYPE=PREDICATE arguments",
        "files": "list of the layouts and predicates they name",
    },
)

# Predicate type (as cosign names it) of each attribute.
SBOM_TYPE = "spdxjson"
PROVENANCE_TYPE = "slsaprovenance1"

def attest(layout, predicates):
    """OciAttestationsInfo of one image layout, from [(type, predicate file)]."""
    arguments = []
    files = [layout]
    for kind, predicate in predicates:
        arguments += ["--attest", "%s=%s=%s" % (layout.short_path, kind, predicate.short_path)]
        files.append(predicate)
    return OciAttestationsInfo(arguments = arguments, files = files if arguments else [])

def merge(infos):
    """One OciAttestationsInfo of several, each attestation once."""
    arguments = []
    seen = {}
    files = []
    for info in infos:
        for index in range(0, len(info.arguments), 2):
            argument = info.arguments[index + 1]
            if argument not in seen:
                seen[argument] = True
                arguments += ["--attest", argument]
        files += [file for file in info.files if file not in files]
    return OciAttestationsInfo(arguments = arguments, files = files)

def attestations_of(targets):
    """The OciAttestationsInfo the targets carry (those without any are skipped), merged."""
    return merge([target[OciAttestationsInfo] for target in targets if OciAttestationsInfo in target])
