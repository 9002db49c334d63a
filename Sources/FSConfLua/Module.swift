import FSConfNode
