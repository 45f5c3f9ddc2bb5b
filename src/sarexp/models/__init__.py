"""Plain ``nn.Module`` networks, one module per architecture, instantiated from ``conf/model/*.yaml``.

Models know nothing about losses, optimizers or data loading; ``sarexp.systems`` wraps them.
``s4d`` holds the S4D layers and ``SSM4SARNet`` (SAR azimuth focusing); ``keops_vandermonde`` its
optional pykeops kernel.
"""
