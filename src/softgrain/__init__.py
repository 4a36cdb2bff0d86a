"""softgrain — grain selection growth of electrodeposited soft metals (Li, Na, K).

The package reads as the model: materials data (:mod:`softgrain.materials`) → phase-field
parameters (:mod:`softgrain.parameters`) → thermodynamic theory (:mod:`softgrain.theory`) and
phase-field engine (:mod:`softgrain.phasefield`) → analysis (:mod:`softgrain.analysis`) →
figures (:mod:`softgrain.plots`), with the command line (:mod:`softgrain.cli`) and file I/O
(:mod:`softgrain.io`) at the edges.
"""

__version__ = "0.1.0"
