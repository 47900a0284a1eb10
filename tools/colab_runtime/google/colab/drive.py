"""Stand-in for `google.colab.drive`: `mount` makes the mount point a link to a local folder, `$COLAB_DRIVE_FOLDER`,
with Drive's `MyDrive` inside; with `$COLAB_DRIVE_REFUSED` set it fails as a refused sign-in does."""

import os


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    if os.environ.get("COLAB_DRIVE_REFUSED"):
        raise ValueError("mount failed")  # what Colab raises when the access prompt is dismissed
    folder = os.environ["COLAB_DRIVE_FOLDER"]
    os.makedirs(os.path.join(folder, "MyDrive"), exist_ok=True)
    os.makedirs(os.path.dirname(mountpoint), exist_ok=True)
    if os.path.islink(mountpoint):
        os.unlink(mountpoint)
    os.symlink(folder, mountpoint)
    print(f"Mounted at {mountpoint}")
