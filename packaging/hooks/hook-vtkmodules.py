# VTK picks its OpenGL implementations through object factories that register on import: the 3D view
# imports vtkRenderingCore only, so the modules that make it draw are named here.
hiddenimports = ["vtkmodules.vtkRenderingOpenGL2", "vtkmodules.vtkRenderingVolumeOpenGL2",
                 "vtkmodules.vtkInteractionStyle", "vtkmodules.vtkRenderingFreeType",
                 "vtkmodules.vtkRenderingUI", "vtkmodules.qt.QVTKRenderWindowInteractor"]
