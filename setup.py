"""Build the Cython kernels, with OpenMP when the compiler supports it.

Metadata lives in pyproject.toml; this file only lists the extensions and probes OpenMP.
``SKXMR_NO_OPENMP=1`` forces a serial build; ``SKXMR_CYTHON_DEBUG=1`` turns bounds checks on.
"""

import os
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CYTHON_DIR = Path("skxmr") / "_cython"

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "nonecheck": False,
}
if os.environ.get("SKXMR_CYTHON_DEBUG"):
    DIRECTIVES.update(boundscheck=True, wraparound=True, initializedcheck=True)


def _extensions():
    """One extension per ``skxmr/_cython/_*.pyx``."""
    libraries = ["m"] if os.name == "posix" else []
    return [
        Extension(
            f"skxmr._cython.{pyx.stem}",
            [str(pyx)],
            libraries=libraries,
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
        )
        for pyx in sorted(CYTHON_DIR.glob("_*.pyx"))
    ]


OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


class build_ext_openmp(build_ext):
    """build_ext that adds numpy's headers and OpenMP flags when a probe compiles."""

    def build_extensions(self):
        import numpy

        flags = None
        if os.environ.get("SKXMR_NO_OPENMP"):
            warnings.warn("skxmr: SKXMR_NO_OPENMP is set; building without OpenMP")
        else:
            flags = self._probe_openmp()
            if flags is None:
                warnings.warn(
                    "skxmr: the C compiler does not support OpenMP; building the "
                    "kernels without it (they will run single-threaded)"
                )
        for ext in self.extensions:
            ext.include_dirs.append(numpy.get_include())
            if flags is not None:
                ext.extra_compile_args += flags[0]
                ext.extra_link_args += flags[1]
        super().build_extensions()

    def _openmp_candidate(self):
        if self.compiler.compiler_type == "msvc":
            return ["/openmp"], []
        if sys.platform == "darwin":
            return ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
        return ["-fopenmp"], ["-fopenmp"]

    def _probe_openmp(self):
        from setuptools.errors import CompileError, LinkError

        compile_flags, link_flags = self._openmp_candidate()
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "omp_probe.c"
            source.write_text(OPENMP_PROBE)
            try:
                objects = self.compiler.compile(
                    [str(source)], output_dir=tmp, extra_postargs=compile_flags
                )
                self.compiler.link_executable(
                    objects, "omp_probe", output_dir=tmp, extra_postargs=link_flags
                )
            except (CompileError, LinkError):
                return None
        return compile_flags, link_flags


def _cythonize(extensions):
    from Cython.Build import cythonize

    return cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        nthreads=int(os.environ.get("SKXMR_BUILD_JOBS", "0")),
    )


setup(
    ext_modules=_cythonize(_extensions()),
    cmdclass={"build_ext": build_ext_openmp},
)
