"""Pushes OCI layouts to a registry with crane: blobs and manifest by digest first, tags last.

A tag therefore only ever moves to an image whose every blob is already in the registry; an interrupted push
leaves no tag changed and can simply be run again (crane skips the blobs the registry already has).
Credentials come from the user's docker config, as crane and cosign read them, helpers included; nothing here
stores any. tools/bazel runs this on the machine, not in the build root (tools/build_root.py, HOST_LAUNCHER).

With a cosign key (--key or COSIGN_KEY, its password in COSIGN_PASSWORD), every pushed index and every image
in it is signed by digest, and its attestations (SBOM, provenance) are attached, before any tag moves; the
key is checked before anything is pushed. Nothing goes to a transparency log. A signature or attestation
this key already made for a digest is not made again, so pushing twice adds nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tools import cli
from tools.oci import credentials
from tools.oci.layout import Layout, LayoutError

# The reference grammar of the distribution spec, simplified to what a repository and a tag may be.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
REPOSITORY = re.compile(rf"^(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class PushError(Exception):
    """A push that cannot go on; the message names the target and what to do."""


# A tag spelled with this suffix (TAG!) is immutable: set only where the registry has no such tag yet, or where it
# already names the digest being pushed; the dated tags of the images are (python/private/images.bzl).
IMMUTABLE = "!"


@dataclass(frozen=True)
class Target:
    layout: Path
    repository: str
    tags: tuple[str, ...]  # as given: an immutable one ends in IMMUTABLE

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(tag.removesuffix(IMMUTABLE) for tag in self.tags)

    @property
    def immutable(self) -> tuple[str, ...]:
        return tuple(tag.removesuffix(IMMUTABLE) for tag in self.tags if tag.endswith(IMMUTABLE))


# cosign's --type names -> the predicate types they write into the in-toto statement.
PREDICATE_TYPES = {
    "spdxjson": "https://spdx.dev/Document",
    "slsaprovenance1": "https://slsa.dev/provenance/v1",
}


@dataclass(frozen=True)
class Attestation:
    """A predicate (TYPE: one of PREDICATE_TYPES) about the image or index that `subject` (a layout) holds."""

    subject: Path
    type: str
    predicate: Path


# Offline signing with a key: no transparency log, and no signing config fetched from Sigstore's TUF
# repository (cosign 3 fetches one by default, and its service URLs would be the public instance).
OFFLINE_SIGNING = ("--tlog-upload=false", "--use-signing-config=false")
# Verifying signatures made that way: there is no transparency-log entry to look for.
OFFLINE_VERIFYING = ("--insecure-ignore-tlog=true",)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def check_target(target: Target) -> None:
    if not REPOSITORY.fullmatch(target.repository):
        raise PushError(f"'{target.repository}' is not a valid repository (lowercase path components, optionally "
                        "after a registry host[:port], e.g. 127.0.0.1:5000/distroless/python); fix --repository")
    registry, path = target.repository.split("/", 1) if "/" in target.repository else ("", target.repository)
    if registry and credentials.registry_of(target.repository) == registry and len(path) < 2:
        raise PushError(f"'{target.repository}': the repository name '{path}' after the registry is shorter than the "
                        f"2 characters crane and cosign accept; use a longer name, e.g. {registry}/{path}/python")
    for tag in target.names:
        if not TAG.fullmatch(tag):
            raise PushError(f"'{tag}' is not a valid tag for {target.repository} (letters, digits, '_', '.', '-', "
                            "at most 128, not starting with '.' or '-'); fix --tag")


def layout_digest(layout: Path) -> str:
    """The digest of the one manifest or index a layout holds."""
    try:
        manifests = Layout(layout).read_index()["manifests"]
    except (LayoutError, KeyError) as error:
        raise PushError(f"{layout} is not an OCI image layout ({error}); build the image first") from None
    if len(manifests) != 1:
        raise PushError(f"{layout} holds {len(manifests)} manifests; push one image or one index at a time")
    return manifests[0]["digest"]


def crane(arguments: list[str], target: Target) -> str:
    result = subprocess.run(["crane", *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise PushError(f"pushing {target.layout.name} to {target.repository} failed: {last}. "
                        f"{credentials.explain(target.repository, last)}; no tag was moved.")
    return result.stdout


def user_path(path: str) -> Path:
    """A path the user gave `bazel run`: relative ones are from where they ran it, not the runfiles."""
    return Path(os.environ.get("BUILD_WORKING_DIRECTORY", "."), os.path.expanduser(path))


def key_file(given: str, what: str, fix: str) -> Path:
    """The key file the user named (relative to where they ran `bazel run`); messages name it as they gave it."""
    path = user_path(given)
    if not path.exists():
        looked = "" if os.path.isabs(os.path.expanduser(given)) else f" (looked for {path})"
        raise PushError(f"the {what} {given} does not exist{looked}; {fix}")
    if not path.is_file():
        raise PushError(f"the {what} {given} is not a file; {fix}")
    return path.resolve()


def remote_digest(reference: str, failed: str = "", outcome: str = "check --repository") -> str:
    """The digest the registry serves for a tag, or "" when the registry has no such tag or repository.

    A failure says `failed` (default: cannot read REFERENCE), crane's message, what it means, then `outcome`.
    """
    result = subprocess.run(["crane", "digest", reference], capture_output=True, text=True)
    if result.returncode == 0:
        return result.stdout.strip()
    last = (result.stderr.strip().splitlines() or ["no message"])[-1]
    if any(code in last for code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "NOT_FOUND", "404 Not Found")):
        return ""
    raise PushError(f"{failed or f'cannot read {reference} from the registry'}: {last}. "
                    f"{credentials.explain(reference, last)}; {outcome}")


def check_immutable_tags(target: Target, digest: str) -> None:
    """Refuses, before anything is pushed, to move a tag that must never move."""
    for tag in target.immutable:
        existing = remote_digest(f"{target.repository}:{tag}", f"pushing {target.layout.name} to {target.repository} "
                                 f"failed (reading its immutable tag {tag})", "no tag was moved.")
        if existing and existing != digest:
            raise PushError(f"{target.repository}:{tag} is an immutable tag and already names {existing}, not this "
                            f"build's {digest}: the same lock must have been pushed from another build. Push from the "
                            "commit that made it, or re-lock (a new archive date gives new dated tags); nothing was "
                            "pushed")


def child_digests(layout: Path, digest: str) -> list[str]:
    """The manifests an index in the layout lists (recursively), or [] for an image."""
    try:
        document = Layout(layout).read_json_digest(digest)
    except LayoutError as error:
        raise PushError(f"{layout}: cannot read {digest} ({error}); build the image again") from None
    children = [descriptor["digest"] for descriptor in document.get("manifests", [])]
    return [grandchild for child in children for grandchild in [child, *child_digests(layout, child)]]


class Signer:
    """Signs and attests digests with one cosign key, skipping what that key has already signed."""

    def __init__(self, key: str, public_key: Path) -> None:
        self.key = key
        self.public_key = public_key

    @staticmethod
    def load(key: str, directory: Path) -> "Signer":
        """Checks the key and its password by deriving the public key, before anything is pushed."""
        if "://" not in key:
            key = str(key_file(key, "signing key", "pass --key (or COSIGN_KEY) naming a key made by `cosign "
                                                    "generate-key-pair`; no image was pushed"))
        if "COSIGN_PASSWORD" not in os.environ:
            raise PushError(f"COSIGN_PASSWORD is not set: set it to the password of {key} (empty for a key without "
                            "one); no image was pushed")
        public_key = directory / "cosign.pub"
        result = subprocess.run(["cosign", "public-key", "--key", key, "--outfile", str(public_key)],
                                stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise PushError(f"cannot use the signing key {key}: {last}. Check the key and COSIGN_PASSWORD; "
                            "no image was pushed")
        return Signer(key, public_key)

    @staticmethod
    def cosign(arguments: list[str], reference: str) -> subprocess.CompletedProcess[str]:
        host = reference.split("/", 1)[0]
        http = ["--allow-http-registry"] if host.rsplit(":", 1)[0] in LOOPBACK_HOSTS else []
        return subprocess.run(["cosign", *arguments, *http, reference], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True)

    def must(self, arguments: list[str], reference: str, target: Target) -> None:
        result = self.cosign(arguments, reference)
        if result.returncode != 0:
            sys.stderr.write(result.stderr)
            last = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise PushError(f"signing {reference} failed: {last}; no tag of {target.repository} was moved")

    def is_signed(self, reference: str) -> bool:
        result = self.cosign(["verify", "--key", str(self.public_key), *OFFLINE_VERIFYING], reference)
        return result.returncode == 0

    def attested(self, reference: str, kind: str) -> list[object]:
        """The predicates of type `kind` this key has attested for the reference."""
        result = self.cosign(["verify-attestation", "--key", str(self.public_key), "--type", kind,
                              *OFFLINE_VERIFYING], reference)
        return predicates(result.stdout, kind) if result.returncode == 0 else []

    def sign(self, reference: str, target: Target) -> None:
        if self.is_signed(reference):
            print(f"  already signed {reference}")
            return
        self.must(["sign", "--key", self.key, *OFFLINE_SIGNING, "--yes"], reference, target)
        print(f"  signed {reference}")

    def attest(self, reference: str, attestation: Attestation, target: Target) -> None:
        wanted = json.loads(attestation.predicate.read_text())
        if wanted in self.attested(reference, attestation.type):
            print(f"  already attested {attestation.type} {attestation.predicate.name} to {reference}")
            return
        self.must(["attest", "--key", self.key, *OFFLINE_SIGNING, "--yes", "--type", attestation.type,
                   "--predicate", str(attestation.predicate)], reference, target)
        print(f"  attested {attestation.type} {attestation.predicate.name} to {reference}")


def predicates(output: str, kind: str) -> list[object]:
    """The predicates of `cosign verify-attestation` output (one DSSE envelope per line) of one type."""
    found = []
    for line in output.splitlines():
        if not line.strip().startswith("{"):
            continue
        try:
            statement = json.loads(base64.b64decode(json.loads(line)["payload"]))
        except (ValueError, KeyError, TypeError):
            continue
        if statement.get("predicateType") == PREDICATE_TYPES.get(kind, kind):
            found.append(statement.get("predicate"))
    return found


def sign_and_attest(target: Target, digest: str, signer: Signer, attestations: list[Attestation]) -> None:
    """Signs the pushed digest and every manifest under it; attaches each one's attestations, and to an
    index, those of all its images (so that a tag, which names the index, carries them all)."""
    subjects = [digest, *child_digests(target.layout, digest)]
    grouped: dict[str, list[Attestation]] = {}
    for attestation in attestations:
        grouped.setdefault(layout_digest(attestation.subject), []).append(attestation)
    for subject in subjects:
        reference = f"{target.repository}@{subject}"
        signer.sign(reference, target)
        own = grouped.get(subject, [])
        inherited = [a for child in child_digests(target.layout, subject) for a in grouped.get(child, [])]
        for attestation in own + inherited:
            signer.attest(reference, attestation, target)


def push(target: Target, signer: Signer | None = None, attestations: list[Attestation] | None = None) -> str:
    """Pushes one layout by digest, signs it (with a signer), then points each tag at it; returns the digest."""
    check_target(target)
    digest = layout_digest(target.layout)
    check_immutable_tags(target, digest)
    by_digest = f"{target.repository}@{digest}"
    # crane pushes a layout's single descriptor as it is, image or index. (Its --index flag would instead
    # wrap the layout's descriptors in a new index, whose digest is not the one built here.)
    crane(["push", str(target.layout), by_digest], target)
    if signer is not None:
        sign_and_attest(target, digest, signer, attestations or [])
    for tag in target.names:
        crane(["tag", by_digest, tag], target)
    print(f"pushed {by_digest}" + (f" as {', '.join(target.names)}" if target.tags else "")
          + (", signed" if signer is not None else ", NOT signed"))
    return digest


def parse_image(spec: str) -> tuple[Path, str, tuple[str, ...]]:
    """LAYOUT=NAME:TAG[,TAG...] -> (layout, name, tags)."""
    layout, _, rest = spec.partition("=")
    name, _, tags = rest.partition(":")
    if not layout or not name or not tags:
        raise argparse.ArgumentTypeError(f"'{spec}' is not LAYOUT=NAME:TAG[,TAG...]")
    return Path(layout), name, tuple(tags.split(","))


def targets(args: argparse.Namespace) -> list[Target]:
    """What to push: one rule's image, or (for the project's :push) every image under a repository prefix."""
    if args.image:
        if args.tag:
            raise PushError("-t/--tag only applies to a single image's push; :push sets every image's tags itself")
        prefix = (args.repository or os.environ.get("DISTROLESS_REPOSITORY", "")).rstrip("/")
        if not prefix:
            raise PushError("no repository: pass --repository REGISTRY/PREFIX (e.g. 127.0.0.1:5000/distroless) or "
                            "set DISTROLESS_REPOSITORY; images are pushed as PREFIX/python:TAG")
        return [Target(layout, f"{prefix}/{name}", tags) for layout, name, tags in args.image]
    repository = args.repository or args.default_repository
    if not repository:
        raise PushError("no repository: pass --repository REGISTRY/NAME (the rule sets none)")
    return [Target(args.layout, repository, tuple(args.tag or args.default_tag))]


def parse_attestation(spec: str) -> Attestation:
    """SUBJECT_LAYOUT=TYPE=PREDICATE -> Attestation."""
    subject, _, rest = spec.partition("=")
    kind, _, predicate = rest.partition("=")
    if not subject or kind not in PREDICATE_TYPES or not predicate:
        raise argparse.ArgumentTypeError(f"'{spec}' is not LAYOUT=TYPE=PREDICATE with TYPE one of "
                                         f"{', '.join(PREDICATE_TYPES)}")
    return Attestation(Path(subject), kind, Path(predicate))


@cli.tool("push", PushError)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", type=Path, help="OCI layout of the image or index to push")
    parser.add_argument("--default-repository", default="", help="repository from the rule, used without -r")
    parser.add_argument("--default-tag", action="append", default=[], help="tags from the rule, used without -t")
    parser.add_argument("--image", type=parse_image, action="append", default=[],
                        help="LAYOUT=NAME:TAG[,TAG...]: push to REPOSITORY/NAME (repeatable; REPOSITORY is a prefix)")
    parser.add_argument("-r", "--repository", help="repository to push to (with --image: the prefix)")
    parser.add_argument("-t", "--tag", action="append", help="tag to set (repeatable); replaces the rule's tags")
    parser.add_argument("--key", default=os.environ.get("COSIGN_KEY", ""),
                        help="cosign private key (default: COSIGN_KEY); its password comes from COSIGN_PASSWORD. "
                             "Without one, images are pushed unsigned")
    parser.add_argument("--attest", type=parse_attestation, action="append", default=[],
                        help="LAYOUT=TYPE=PREDICATE: attach PREDICATE (TYPE spdxjson or slsaprovenance1) to the "
                             "image LAYOUT holds wherever it is pushed (repeatable; only with a key)")
    args = parser.parse_args(argv)
    if bool(args.layout) == bool(args.image):
        parser.error("give either --layout or --image")
    chosen = targets(args)
    for target in chosen:
        check_target(target)
    with tempfile.TemporaryDirectory(prefix="push-") as directory:
        signer = Signer.load(args.key, Path(directory)) if args.key else None
        if signer is None:
            print("NOTE: no signing key (--key or COSIGN_KEY): the images are pushed WITHOUT signatures or "
                  "attestations", file=sys.stderr)
        for target in chosen:
            push(target, signer, args.attest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
