public enum FSConfNodePlaceholder {}
