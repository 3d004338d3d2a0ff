"""The frozen app's entry point (PyInstaller runs this, not main.py directly): child processes
re-enter the executable, so multiprocessing's children (formats.sandbox decodes images in one) and
the TorchScript sandbox (started as ``<python> -I sandbox_child.py MODEL DEVICE``) are dispatched here
before anything else runs."""
import multiprocessing
import sys


def _main() -> int:
    multiprocessing.freeze_support()  # a spawn/forkserver child runs its task here and exits
    if len(sys.argv) > 2 and sys.argv[1] == "-I" and "sandbox_child" in sys.argv[2]:
        import runpy

        sys.argv = [sys.argv[2], *sys.argv[3:]]
        runpy.run_module("inference.sandbox_child", run_name="__main__")
        return 0
    from main import main

    return main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(_main())
