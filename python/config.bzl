"""The Python images: one entry per Python version. Adding a version is one entry here plus one lock."""

# Where the project's source lives, recorded in each image's org.opencontainers.image.source label;
# left empty (and the label omitted) until the project has a public home.
SOURCE_URL = ""

# Present in every image whatever the Python version: what distroless's base image holds, plus dash for
# os.system and shell=True, libc-bin for ldconfig (ctypes.util.find_library), libgomp1 for wheels like
# LightGBM, and the manylinux2014 libraries wheels may link without vendoring them, except X11 and GL
# (a server image has no display). The mapping of library to package is in the distribution's manifest.
_COMMON_PACKAGES = [
    "base-files",
    "ca-certificates",
    "dash",
    "libc-bin",
    "libc6",
    "libgcc-s1",
    "libglib2.0-0",
    "libgomp1",
    "libstdc++6",
    "netbase",
    "tzdata",
]

PYTHONS = {
    "3.9": struct(
        distribution = "bullseye",
        python = "python3.9",
        archs = ["amd64"],
        merged_usr = False,
        system_packages = _COMMON_PACKAGES,
        python_packages = ["python3.9-minimal", "libpython3.9-minimal", "libpython3.9-stdlib"],
        # Of the parts we prune, bullseye's libpython3.9-stdlib ships only turtle.py: Debian already splits
        # idlelib (idle-python3.9), lib2to3 and 2to3 (python3-lib2to3), tkinter (python3-tk), ensurepip
        # (python3.9-venv) and turtledemo (python3.9-examples) into packages the image leaves out. The
        # structure tests check that none of them imports. The prune rule fails if turtle.py goes missing.
        pruned = ["usr/lib/python3.9/turtle.py"],
    ),
}
