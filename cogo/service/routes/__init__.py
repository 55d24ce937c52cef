"""The read service's routes, one module per resource; cogo.service.app mounts them."""
