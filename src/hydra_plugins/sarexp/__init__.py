"""sarexp's Hydra plugins. Hydra only instantiates sweepers and launchers from the ``hydra_plugins``
namespace and imports every module here at start-up, so these classes are thin and import their
implementations (in ``sarexp.sweepers`` and ``sarexp.launchers``) only when used."""
