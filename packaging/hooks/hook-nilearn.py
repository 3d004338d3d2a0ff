# Delineate needs only nilearn's MNI152 templates (the bundled sample), found by package location
# (formats.samples uses importlib.util.find_spec): the package itself, its three template files, and
# none of nilearn's scikit-learn/pandas stack.
from PyInstaller.utils.hooks import collect_data_files

datas = collect_data_files("nilearn", includes=["datasets/data/mni_icbm152_*_tal_nlin_sym_09a_converted.nii.gz"])
hiddenimports = []
excludedimports = ["sklearn", "pandas", "joblib", "nilearn.plotting", "nilearn.maskers", "nilearn.glm"]
