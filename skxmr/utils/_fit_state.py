"""Transactional fits: an estimator's fitted state is replaced in one step.

``fit`` runs on a *scratch* estimator (:meth:`TransactionalFitMixin._scratch`: the
same class with the same parameters and no fitted state) and, once it has
succeeded, :meth:`~TransactionalFitMixin._publish_from` swaps the instance's whole
attribute dictionary for one holding the parameters and the new fitted state.
So a fit that raises, or is interrupted (KeyboardInterrupt), leaves the
estimator exactly as it was, and the fitted state never mixes two fits.

Prediction methods take a :meth:`~TransactionalFitMixin._frozen` view first: an
object sharing the attribute dictionary of the moment, so a predict running
while another thread refits sees the old model or the new one, never a mix.
"""

import threading

__all__ = ["TransactionalFitMixin", "is_fitted_name"]

# Serialises publications (a publication copies the parameters of the moment).
_PUBLISH_LOCK = threading.Lock()


def is_fitted_name(name, private=()):
    """Whether attribute ``name`` belongs to the fitted state: it ends with ``_``
    (scikit-learn's convention, dunder names excluded) or is one of ``private``."""
    return (name.endswith("_") and not name.startswith("__")) or name in private


class TransactionalFitMixin:
    """Mixin of the estimators whose ``fit`` publishes its state in one step.

    ``_private_fitted_state``: names of private attributes (without a trailing
    underscore) that belong to the fitted state, e.g. caches built from it.
    """

    _private_fitted_state = ()

    def _is_fitted_name(self, name):
        return is_fitted_name(name, self._private_fitted_state)

    def _scratch(self):
        """The same estimator (class and parameters), without fitted state."""
        work = object.__new__(type(self))
        work.__dict__.update({name: value for name, value in vars(self).items()
                              if not self._is_fitted_name(name)})
        return work

    def _fitted_copy(self):
        """A scratch estimator holding this one's fitted state, for changes to
        a fitted model that must not be seen half-done (publish it with
        :meth:`_publish_from`). The attributes are shared, not copied: replace
        them on the copy, do not modify them in place."""
        work = self._scratch()
        work.__dict__.update({name: value for name, value in vars(self).items()
                              if self._is_fitted_name(name)})
        return work

    def _publish_from(self, work):
        """Take the fitted state of ``work`` (a fitted scratch estimator) in one
        step, dropping every fitted attribute of the previous fit."""
        with _PUBLISH_LOCK:
            state = {name: value for name, value in vars(self).items()
                     if not self._is_fitted_name(name)}
            state.update({name: value for name, value in vars(work).items()
                          if self._is_fitted_name(name)})
            self.__dict__ = state

    def _frozen(self):
        """A view of the estimator as it is now: it shares the current attribute
        dictionary, which a later fit replaces rather than changes."""
        view = object.__new__(type(self))
        view.__dict__ = self.__dict__
        return view
