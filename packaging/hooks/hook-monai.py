# MONAI reads its own source at run time (pyz+py, as pyinstaller-hooks-contrib does) and imports many
# modules through monai.utils.optional_import (a string, invisible to PyInstaller): collect the
# subpackages Delineate's networks, inferers, losses and schedulers come from.
from PyInstaller.utils.hooks import collect_submodules

module_collection_mode = "pyz+py"
hiddenimports = [m for pkg in ("monai.networks", "monai.inferers", "monai.losses", "monai.data.utils",
                               "monai.transforms.utils") for m in collect_submodules(pkg)]
