"""napari side of napari-skelmae: layer conversions, npe2 hooks and dock widgets."""
