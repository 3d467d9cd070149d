"Stand-ins for notebook-only packages the device lacks (plotly, ipywidgets, av); training never calls them."

import importlib, sys, types


class _Any(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {"__init__": lambda self, *a, **k: None})


for name in ["plotly.express", "plotly.graph_objects", "ipywidgets", "av"]:
    try:
        importlib.import_module(name)
    except (ImportError, ValueError):
        for part in [name.split(".")[0], name]:
            sys.modules[part] = _Any(part)
        if "." in name:
            setattr(sys.modules[name.split(".")[0]], name.split(".")[1], sys.modules[name])
